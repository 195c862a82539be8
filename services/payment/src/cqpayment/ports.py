"""Ports (typing.Protocol) the payment use cases depend on. Adapters implement them
(PostgreSQL, the Alipay trade API, the PDF renderer); unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Protocol

from cqpayment.domain.provider import (
    ProviderNotification,
    ProviderRefund,
    ProviderTrade,
    StatementLine,
)


class TradeProvider(Protocol):
    """The payment provider's trade API (Alipay: ``alipay.trade.*``).

    Every call has a deadline (``ALIPAY_TIMEOUT_S``). A call that gets no trustworthy answer
    raises ``ProviderUnavailableError`` (outcome unknown); a business refusal raises
    ``ProviderRefusedError``.
    """

    async def create_trade(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        buyer_id: str,
        expires_at: datetime,
    ) -> str:
        """Create (or, for the same ``out_trade_no`` and amount, find again) an unpaid trade
        the buyer pays in the mini-program; returns the provider's trade number. The trade
        closes by itself at ``expires_at``."""
        ...

    async def query_trade(self, out_trade_no: str) -> ProviderTrade | None:
        """The trade as the provider sees it; None when the provider never created it."""
        ...

    async def close_trade(self, out_trade_no: str) -> None:
        """Close an unpaid trade so it can no longer be paid. A trade the provider never
        created counts as closed. Raises ``TradeAlreadyPaidError`` when it has been paid."""
        ...

    async def refund(
        self, *, out_trade_no: str, amount_fen: int, out_request_no: str, reason: str
    ) -> ProviderRefund:
        """Refund (part of) a paid trade; the same ``out_request_no`` again moves no money."""
        ...

    def verify_notification(self, params: Mapping[str, str]) -> ProviderNotification:
        """Check a notification's signature with the provider's public key and parse it.
        Raises ``NotificationRejectedError`` ("bad_signature", "malformed") otherwise."""
        ...

    async def statement(self, day: date) -> list[StatementLine]:
        """The provider's statement of ``day`` (Asia/Shanghai): trades paid that day."""
        ...
