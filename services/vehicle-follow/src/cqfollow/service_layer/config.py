"""What the follow use cases depend on, built once per process: the configurable numbers
(from settings), the unit-of-work factory, the SMS ports, the clock and the id source."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from cqcommon.clock import Clock

from cqfollow.domain.follows import QuotaLimits
from cqfollow.ports import SmsCodes, SmsOutbox, SmsSender, UnitOfWorkFactory


class FollowSettings(Protocol):
    @property
    def follow_max_active(self) -> int: ...
    @property
    def follow_chances_per_year(self) -> int: ...
    @property
    def vehicle_max_followers(self) -> int: ...
    @property
    def licence_follow_limit(self) -> int: ...
    @property
    def follow_request_ttl_h(self) -> int: ...
    @property
    def sms_follow_ttl_days(self) -> int: ...
    @property
    def sms_resend_interval_s(self) -> int: ...
    @property
    def aliyun_sms_template_code(self) -> str: ...
    @property
    def sandbox_mode(self) -> bool: ...


@dataclass(frozen=True)
class FollowConfig:
    limits: QuotaLimits = field(default_factory=QuotaLimits)
    #: R-FOL-2: a request nobody approves, declines or confirms expires after this
    request_ttl: timedelta = timedelta(hours=72)
    #: R-FOL-5: an SMS-authorised follow ends after this
    sms_follow_ttl: timedelta = timedelta(days=365)
    #: R-SMS-1: when the next code may go to the same phone (shown as ``sms_resend_at``)
    sms_resend_interval: timedelta = timedelta(seconds=60)
    #: the approved SMS template of the consent code (its one parameter is ``code``)
    sms_template_code: str = "SMS_000000000"
    #: R-SBX-1: the sandbox-only operations (SMS outbox, roster seeding) exist
    sandbox_mode: bool = True

    @classmethod
    def from_settings(cls, s: FollowSettings) -> FollowConfig:
        return cls(
            limits=QuotaLimits(
                max_active=s.follow_max_active,
                chances_per_year=s.follow_chances_per_year,
                vehicle_max_followers=s.vehicle_max_followers,
                licence_follow_limit=s.licence_follow_limit,
            ),
            request_ttl=timedelta(hours=s.follow_request_ttl_h),
            sms_follow_ttl=timedelta(days=s.sms_follow_ttl_days),
            sms_resend_interval=timedelta(seconds=s.sms_resend_interval_s),
            sms_template_code=s.aliyun_sms_template_code,
            sandbox_mode=s.sandbox_mode,
        )


def _uuid4() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Deps:
    """Everything a use case needs besides its request (built by the entrypoint)."""

    uows: UnitOfWorkFactory
    sms_codes: SmsCodes
    sms_sender: SmsSender
    clock: Clock
    config: FollowConfig = field(default_factory=FollowConfig)
    #: what the recording SMS adapter kept (None when the sender records nothing)
    sms_outbox: SmsOutbox | None = None
    #: fresh ids of requests and follows
    new_id: Callable[[], str] = _uuid4
