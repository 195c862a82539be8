"""What the payment use cases depend on, built once per process: the configurable numbers
(from settings), the unit-of-work factory, the provider, the SMS sender (R-JOB-6's overdue
notices), the clock and the id sources."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cqcommon.clock import Clock
from cqcommon.errors import MAINTENANCE_WINDOW, DomainError
from cqcommon.maintenance import MaintenanceWindow
from cqcommon.sms import SmsSender

from cqpayment.ports import TradeProvider, UnitOfWorkFactory


class PaymentSettings(Protocol):
    @property
    def alipay_app_id(self) -> str: ...
    @property
    def alipay_seller_id(self) -> str: ...
    @property
    def alipay_timeout_s(self) -> float: ...
    @property
    def idempotency_key_retention_h(self) -> int: ...
    @property
    def idempotency_lock_timeout_s(self) -> float: ...
    @property
    def payment_pending_resolve_after_s(self) -> int: ...
    @property
    def payment_feedback_max(self) -> int: ...
    @property
    def payment_maintenance_window(self) -> str: ...
    @property
    def aliyun_sms_overdue_template_code(self) -> str: ...


@dataclass(frozen=True)
class PaymentConfig:
    #: R-PAY-7: a notification must name our app and our merchant
    app_id: str = "2021000000000000"
    seller_id: str = "2088000000009999"
    #: the deadline of one provider call (the adapter enforces it; listings bound it too)
    provider_timeout_s: float = 5.0
    #: R-PAY-3: keys kept at least this long, a lock older than this may be taken over
    key_retention: timedelta = timedelta(hours=48)
    lock_timeout: timedelta = timedelta(seconds=30)
    #: R-PAY-4 / R-JOB-1: the job asks about payments pending longer than this
    resolve_after: timedelta = timedelta(seconds=300)
    #: R-PAY-9: feedback entries per payment
    feedback_max: int = 5
    #: R-PAY-6: None turns the refusal off (test sessions not about the window)
    window: MaintenanceWindow | None = field(default_factory=MaintenanceWindow)
    #: what the buyer sees as the trade's subject (the decision number follows)
    subject: str = "重庆交通违法罚款"
    #: R-JOB-6: the SMS template of the overdue notice
    overdue_template_code: str = "SMS_000000001"

    @classmethod
    def from_settings(cls, s: PaymentSettings) -> PaymentConfig:
        text = s.payment_maintenance_window.strip()
        return cls(
            app_id=s.alipay_app_id,
            seller_id=s.alipay_seller_id,
            provider_timeout_s=s.alipay_timeout_s,
            key_retention=timedelta(hours=s.idempotency_key_retention_h),
            lock_timeout=timedelta(seconds=s.idempotency_lock_timeout_s),
            resolve_after=timedelta(seconds=s.payment_pending_resolve_after_s),
            feedback_max=s.payment_feedback_max,
            window=MaintenanceWindow.parse(text) if text else None,
            overdue_template_code=s.aliyun_sms_overdue_template_code,
        )

    def check_window(self, now: datetime) -> None:
        """R-PAY-6: refuse a new payment inside the window, with when to come back."""
        if self.window is None or not self.window.contains(now):
            return
        raise DomainError(
            MAINTENANCE_WINDOW,
            details={
                "retry_after_s": self.window.retry_after_s(now),
                "resumes_at": self.window.ends_at(now).isoformat(),
            },
        )


def _uuid4() -> str:
    return str(uuid.uuid4())


def _token() -> str:
    return secrets.token_hex(12)


@dataclass(frozen=True)
class Deps:
    """Everything a use case needs besides its request (built by the entrypoint)."""

    uows: UnitOfWorkFactory
    provider: TradeProvider
    clock: Clock
    config: PaymentConfig = field(default_factory=PaymentConfig)
    #: R-JOB-6: where overdue notices go (None: the overdue job refuses to run)
    sms: SmsSender | None = None
    #: fresh ids of payments, refunds and feedback
    new_id: Callable[[], str] = _uuid4
    #: 24 random hex digits of an order number
    new_token: Callable[[], str] = _token
