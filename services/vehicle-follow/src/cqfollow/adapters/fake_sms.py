"""In-memory SMS ports for unit tests and for the follow service's tests before (or
without) Redis: ``FakeSmsCodes`` keeps R-SMS-1/2 as the Redis adapter does (cooldown per
phone, daily limit, single use, wrong entries void the code) in one event loop, where each
call runs without yielding and so is atomic; ``FakeSmsSender`` records what it sent and
can be told to fail. Codes are kept in clear here (tests read them); the real adapter
stores only an HMAC.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cqcommon.clock import SHANGHAI

from cqfollow.domain.sms import (
    CODE_DIGITS,
    CodeCheck,
    CodeCheckResult,
    SmsPhoneLockedError,
    SmsResendTooSoonError,
    SmsUnavailableError,
)


@dataclass
class _Code:
    phone: str
    code: str
    expires_at: datetime
    wrong: int = 0


def _seconds_to_midnight(now: datetime) -> int:
    local = now.astimezone(SHANGHAI)
    midnight = datetime(local.year, local.month, local.day, tzinfo=SHANGHAI) + timedelta(days=1)
    return max(1, int((midnight - local).total_seconds()))


@dataclass
class FakeSmsCodes:
    """The ``SmsCodes`` port in memory (see the module docstring)."""

    code_ttl_s: int = 300
    resend_interval_s: int = 60
    max_wrong: int = 5
    daily_limit: int = 10
    #: a fixed code for every issue (tests), else random digits
    fixed_code: str | None = None
    codes: dict[str, _Code] = field(default_factory=dict)
    last_sent: dict[str, datetime] = field(default_factory=dict)
    daily: dict[tuple[str, str], int] = field(default_factory=dict)
    locked_day: dict[str, str] = field(default_factory=dict)
    issued: list[tuple[str, str]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    #: the clock ``check`` judges expiry by (``issue`` gets ``now`` from its caller)
    now: datetime | None = None

    async def issue(self, *, phone: str, purpose_id: str, now: datetime) -> str:
        day = now.astimezone(SHANGHAI).date().isoformat()
        if self.locked_day.get(phone) == day:
            raise SmsPhoneLockedError(_seconds_to_midnight(now))
        last = self.last_sent.get(phone)
        if last is not None and now < last + timedelta(seconds=self.resend_interval_s):
            wait = last + timedelta(seconds=self.resend_interval_s) - now
            raise SmsResendTooSoonError(max(1, int(wait.total_seconds())))
        count = self.daily.get((phone, day), 0) + 1
        self.daily[(phone, day)] = count
        if count > self.daily_limit:
            self.locked_day[phone] = day
            raise SmsPhoneLockedError(_seconds_to_midnight(now))
        self.last_sent[phone] = now
        code = self.fixed_code or "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        self.codes[purpose_id] = _Code(phone, code, now + timedelta(seconds=self.code_ttl_s))
        self.now = now
        self.issued.append((purpose_id, code))
        return code

    async def release(self, *, phone: str, purpose_id: str) -> None:
        self.codes.pop(purpose_id, None)
        self.last_sent.pop(phone, None)
        self.released.append(purpose_id)

    async def check(self, *, purpose_id: str, code: str) -> CodeCheckResult:
        stored = self.codes.get(purpose_id)
        if stored is None or (self.now is not None and stored.expires_at <= self.now):
            self.codes.pop(purpose_id, None)
            return CodeCheckResult(CodeCheck.EXPIRED)
        if secrets.compare_digest(stored.code.encode(), code.encode()):
            del self.codes[purpose_id]
            return CodeCheckResult(CodeCheck.OK)
        stored.wrong += 1
        if stored.wrong >= self.max_wrong:
            del self.codes[purpose_id]
            return CodeCheckResult(CodeCheck.VOID)
        return CodeCheckResult(CodeCheck.WRONG, attempts_left=self.max_wrong - stored.wrong)

    def code_for(self, purpose_id: str) -> str:
        """The live code of a request (tests play the friend reading it out)."""
        return self.codes[purpose_id].code


@dataclass(frozen=True)
class FakeSentSms:
    phone: str
    template_code: str
    params: Mapping[str, str]
    sent_at: datetime


@dataclass
class FakeSmsSender:
    """The ``SmsSender`` port recording in memory; ``fail_next`` makes sends fail."""

    sent: list[FakeSentSms] = field(default_factory=list)
    fail_next: int = 0
    now: datetime | None = None

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SmsUnavailableError("isv.FAKE_FAILURE")
        at = self.now or datetime.now(SHANGHAI)
        self.sent.append(FakeSentSms(phone, template_code, dict(params), at))
        return f"fake-{len(self.sent)}"

    async def recent(self, phone: str | None, limit: int) -> Sequence[FakeSentSms]:
        """Newest first, like the recording adapter (the ``SmsOutbox`` port)."""
        mine = [m for m in self.sent if phone is None or m.phone == phone]
        return list(reversed(mine))[:limit]
