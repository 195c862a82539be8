"""What the payment provider (Alipay in production, the fake Alipay server in tests and the
sandbox) tells us, in the domain's words, and how a provider call can fail.

The ``TradeProvider`` port (``cqpayment.ports``) speaks these types, so the service layer
decides on provider answers without knowing the wire protocol. The rule that runs through
them (R-PAY-3/4): a call whose outcome is unknown (timeout, transport error) is never
treated as a refusal; only the provider's own query can settle it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

#: The refusal (``ProviderRefusedError.code``) of a statement the provider has not produced
#: yet: Alipay's bill query answers it for a day until the morning after (R-JOB-2 then
#: writes nothing and says so).
STATEMENT_NOT_READY = "isp.bill_not_exist"


class TradeState(enum.StrEnum):
    """A trade's state at the provider (Alipay's ``trade_status`` values)."""

    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"  # paid, refundable
    TRADE_FINISHED = "TRADE_FINISHED"  # paid, final
    TRADE_CLOSED = "TRADE_CLOSED"  # closed unpaid, or fully refunded

    @property
    def paid(self) -> bool:
        """Both success states mean the money arrived."""
        return self in (TradeState.TRADE_SUCCESS, TradeState.TRADE_FINISHED)


@dataclass(frozen=True, slots=True)
class ProviderTrade:
    """A trade as the provider reports it (``alipay.trade.query``)."""

    out_trade_no: str
    trade_no: str
    state: TradeState
    total_amount_fen: int
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """The provider's answer to a refund request."""

    out_trade_no: str
    out_request_no: str
    #: The trade's cumulative refunded amount, as the provider reports it.
    refunded_total_fen: int
    refunded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderNotification:
    """A provider notification whose signature checked out (``trade_status_sync``).

    Only the signature is verified when one of these exists; whether it matches our order
    (app id, seller, trade number, amount) is the domain's check (R-PAY-7).
    """

    notify_id: str
    app_id: str
    seller_id: str
    out_trade_no: str
    trade_no: str
    state: TradeState
    total_amount_fen: int
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of the provider's daily statement (reconciliation, R-JOB-2)."""

    out_trade_no: str
    trade_no: str
    total_amount_fen: int
    refunded_fen: int
    paid_at: datetime


class ProviderError(Exception):
    """Base of the failures a provider call raises."""


class ProviderUnavailableError(ProviderError):
    """No answer, or no trustworthy one (timeout, transport error, bad signature on the
    answer): the outcome of the call is unknown and must be settled by a later query."""


class ProviderRefusedError(ProviderError):
    """The provider answered and refused the call (a business error): nothing happened."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class TradeAlreadyPaidError(ProviderError):
    """Closing a trade failed because it has been paid (the caller settles it as paid)."""


class NotificationRejectedError(Exception):
    """A notification that must not change anything (R-PAY-7); ``reason`` is stable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
