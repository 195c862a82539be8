"""Ports (typing.Protocol) the vehicle-follow use cases depend on. Adapters implement them
(PostgreSQL, Redis for SMS codes, the SMS gateways); unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from cqfollow.domain.sms import CodeCheckResult


class SmsSender(Protocol):
    """Sends one templated SMS (R-SMS-3): Alibaba Cloud ``SendSms`` in production, a
    recording adapter in tests and the sandbox. Raises ``SmsUnavailableError`` when the
    gateway does not take the message; never logs the parameters (they hold the code)."""

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        """Send; the gateway's id of the message."""
        ...


class SmsCodes(Protocol):
    """One-time SMS codes kept in Redis with atomic operations (R-SMS-1, R-SMS-2)."""

    async def issue(self, *, phone: str, purpose_id: str, now: datetime) -> str:
        """A fresh code for ``purpose_id`` (a follow request), stored as an HMAC for the code's
        life; any earlier code of that purpose is replaced. Atomic per phone: raises
        ``SmsResendTooSoonError`` within the resend interval of the last send to ``phone``
        and ``SmsPhoneLockedError`` once the phone is over its daily limit (the send that
        passes the limit locks it for the rest of the Asia/Shanghai day). Of 100 concurrent
        calls for one phone exactly one returns a code."""
        ...

    async def release(self, *, phone: str, purpose_id: str) -> None:
        """Undo ``issue`` after the gateway failed to send: the code is dropped and the
        resend interval lifted (the daily count keeps the attempt)."""
        ...

    async def check(self, *, purpose_id: str, code: str) -> CodeCheckResult:
        """Compare an entered code in constant time and atomically: OK uses it up; WRONG
        counts an attempt; the last allowed wrong attempt answers VOID and deletes it."""
        ...
