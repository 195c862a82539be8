"""Sending SMS, shared by every service that does (R-SMS-3): the port and its types.

The follow service sends consent codes (R-FOL-2), payment sends overdue notices (R-JOB-6).
This module is pure on purpose: the follow domain imports ``SentSms`` and
``SmsUnavailableError`` from here, and the import-linter contract "domain is pure" forbids
I/O libraries even through another module, so the adapters live in submodules that are
imported only by adapters and bootstraps: ``recording`` (a Redis list, tests and the
sandbox), ``aliyun`` (Alibaba Cloud SMS) and ``senders`` (which one the settings name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["SentSms", "SmsSender", "SmsUnavailableError"]


class SmsUnavailableError(Exception):
    """The SMS gateway did not take the message (down, timed out, refused our request).
    The message is only the provider's code (``isv.*``, ``timeout``...), never the text."""


@dataclass(frozen=True, slots=True)
class SentSms:
    """One message the recording adapter kept instead of sending (R-SMS-3): what staff read
    through the sandbox outbox. ``params`` may hold a code in clear, which is why the
    outbox is readable in sandbox mode only."""

    message_id: str
    phone: str
    template_code: str
    params: Mapping[str, str]
    sent_at: datetime


class SmsSender(Protocol):
    """Sends one templated SMS (R-SMS-3): Alibaba Cloud ``SendSms`` in production, a
    recording adapter in tests and the sandbox. Raises ``SmsUnavailableError`` when the
    gateway does not take the message; never logs the parameters (they may hold a code)."""

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        """Send; the gateway's id of the message."""
        ...
