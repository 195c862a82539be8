"""``FakeTradeProvider``: an in-memory ``TradeProvider`` (the Alipay trade API's test
double). It moves no money and talks to nothing; the service never picks it by itself
(production and the sandbox use the Alipay adapter against Alipay or the fake Alipay
server). Unit tests and the integration tests that must steer the provider exactly use it:
fail or refuse the next call of a method, pay a trade without notifying (the "crash
between the provider's success and our commit"), build a notification for a trade, count
the trades created.

It keeps the provider's promises the service relies on: ``create_trade`` with the same
order number and amount finds the same trade again (never a second one), a trade closes by
itself at its expiry, closing a paid trade raises ``TradeAlreadyPaidError``, a refund with
the same ``out_request_no`` moves no money twice. Each call yields to the event loop
once, so concurrent callers interleave as they would over a network.

Notifications it builds are "signed" with ``FAKE_SIGNATURE``; ``verify_notification``
rejects any other signature (``bad_signature``) and unparseable fields (``malformed``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from cqcommon.clock import SHANGHAI, Clock, SystemClock

from cqpayment.domain.provider import (
    NotificationRejectedError,
    ProviderError,
    ProviderNotification,
    ProviderRefund,
    ProviderRefusedError,
    ProviderTrade,
    StatementLine,
    TradeAlreadyPaidError,
    TradeState,
)

FAKE_SIGNATURE = "fake-signature-ok"


@dataclass
class FakeTrade:
    out_trade_no: str
    trade_no: str
    amount_fen: int
    buyer_id: str
    subject: str
    expires_at: datetime
    state: TradeState = TradeState.WAIT_BUYER_PAY
    paid_at: datetime | None = None
    refunded_fen: int = 0
    refund_requests: dict[str, int] = field(default_factory=dict)


def _fen(text: str) -> int:
    whole, _, cents = text.partition(".")
    if not whole.isdigit() or (cents and not cents.isdigit()) or len(cents) > 2:
        raise ValueError(text)
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


class FakeTradeProvider:
    """In memory; see the module docstring."""

    def __init__(
        self,
        *,
        app_id: str = "2021000000000000",
        seller_id: str = "2088000000009999",
        clock: Clock | None = None,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.clock: Clock = clock or SystemClock()
        self.trades: dict[str, FakeTrade] = {}
        #: calls per method name (``create_trade``, ``query_trade`` ...)
        self.calls: Counter[str] = Counter()
        self._failures: dict[str, list[ProviderError]] = {}
        self._serial = itertools.count(1)
        self._notify = itertools.count(1)

    # -- steering ---------------------------------------------------------------------
    def fail_next(self, method: str, error: ProviderError, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (after doing nothing)."""
        self._failures.setdefault(method, []).extend([error] * times)

    def fail_always(self, method: str, error: ProviderError) -> None:
        self.fail_next(method, error, times=10**9)

    def heal(self) -> None:
        self._failures.clear()

    async def _enter(self, method: str) -> None:
        self.calls[method] += 1
        await asyncio.sleep(0)
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    @property
    def created(self) -> int:
        """Trades created (a create that found its trade again does not count)."""
        return len(self.trades)

    def pay(self, out_trade_no: str, *, at: datetime | None = None) -> FakeTrade:
        """The buyer pays the trade (no notification is sent: see ``notification``)."""
        trade = self.trades[out_trade_no]
        now = at or self.clock.now()
        self._expire(trade, now)
        if trade.state is not TradeState.WAIT_BUYER_PAY:
            raise ValueError(f"trade {out_trade_no} is {trade.state.value}, cannot be paid")
        trade.state = TradeState.TRADE_SUCCESS
        trade.paid_at = now
        return trade

    def notification(
        self,
        out_trade_no: str,
        *,
        notify_id: str | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The form fields of a ``trade_status_sync`` notification for the trade's state."""
        trade = self.trades[out_trade_no]
        params = {
            "notify_id": notify_id or f"fake-notify-{next(self._notify)}",
            "notify_type": "trade_status_sync",
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            "trade_status": trade.state.value,
            "total_amount": _yuan(trade.amount_fen),
            "buyer_id": trade.buyer_id,
            "sign_type": "RSA2",
            "sign": FAKE_SIGNATURE,
        }
        if trade.paid_at is not None:
            params["gmt_payment"] = trade.paid_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        params.update(overrides or {})
        return params

    def _expire(self, trade: FakeTrade, now: datetime) -> None:
        if trade.state is TradeState.WAIT_BUYER_PAY and now >= trade.expires_at:
            trade.state = TradeState.TRADE_CLOSED

    def _view(self, trade: FakeTrade) -> ProviderTrade:
        return ProviderTrade(
            out_trade_no=trade.out_trade_no,
            trade_no=trade.trade_no,
            state=trade.state,
            total_amount_fen=trade.amount_fen,
            paid_at=trade.paid_at,
        )

    # -- the TradeProvider port ---------------------------------------------------------
    async def create_trade(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        buyer_id: str,
        expires_at: datetime,
    ) -> str:
        await self._enter("create_trade")
        existing = self.trades.get(out_trade_no)
        if existing is not None:
            self._expire(existing, self.clock.now())
            if existing.amount_fen != amount_fen:
                raise ProviderRefusedError("ACQ.CONTEXT_INCONSISTENT", "amount differs")
            if existing.state.paid:
                raise ProviderRefusedError("ACQ.TRADE_HAS_SUCCESS", "already paid")
            if existing.state is TradeState.TRADE_CLOSED:
                raise ProviderRefusedError("ACQ.TRADE_HAS_CLOSE", "closed")
            return existing.trade_no
        trade_no = f"{self.clock.now().astimezone(SHANGHAI):%Y%m%d}22{next(self._serial):018d}"
        self.trades[out_trade_no] = FakeTrade(
            out_trade_no=out_trade_no,
            trade_no=trade_no,
            amount_fen=amount_fen,
            buyer_id=buyer_id,
            subject=subject,
            expires_at=expires_at,
        )
        return trade_no

    async def query_trade(self, out_trade_no: str) -> ProviderTrade | None:
        await self._enter("query_trade")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            return None
        self._expire(trade, self.clock.now())
        return self._view(trade)

    async def close_trade(self, out_trade_no: str) -> None:
        await self._enter("close_trade")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            return
        self._expire(trade, self.clock.now())
        if trade.state.paid:
            raise TradeAlreadyPaidError(out_trade_no)
        trade.state = TradeState.TRADE_CLOSED

    async def refund(
        self, *, out_trade_no: str, amount_fen: int, out_request_no: str, reason: str
    ) -> ProviderRefund:
        await self._enter("refund")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise ProviderRefusedError("ACQ.TRADE_NOT_EXIST")
        if out_request_no not in trade.refund_requests:
            if not trade.state.paid:
                raise ProviderRefusedError("ACQ.TRADE_STATUS_ERROR")
            if trade.refunded_fen + amount_fen > trade.amount_fen:
                raise ProviderRefusedError("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
            trade.refund_requests[out_request_no] = amount_fen
            trade.refunded_fen += amount_fen
            if trade.refunded_fen == trade.amount_fen:
                trade.state = TradeState.TRADE_CLOSED
        return ProviderRefund(
            out_trade_no=out_trade_no,
            out_request_no=out_request_no,
            refunded_total_fen=trade.refunded_fen,
            refunded_at=self.clock.now(),
        )

    def verify_notification(self, params: Mapping[str, str]) -> ProviderNotification:
        self.calls["verify_notification"] += 1
        if params.get("sign") != FAKE_SIGNATURE:
            raise NotificationRejectedError("bad_signature")
        try:
            paid = params.get("gmt_payment")
            return ProviderNotification(
                notify_id=params["notify_id"],
                app_id=params["app_id"],
                seller_id=params["seller_id"],
                out_trade_no=params["out_trade_no"],
                trade_no=params["trade_no"],
                state=TradeState(params["trade_status"]),
                total_amount_fen=_fen(params["total_amount"]),
                paid_at=(
                    datetime.strptime(paid, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
                    if paid
                    else None
                ),
            )
        except (KeyError, ValueError):
            raise NotificationRejectedError("malformed") from None

    async def statement(self, day: date) -> list[StatementLine]:
        await self._enter("statement")
        return [
            StatementLine(
                out_trade_no=t.out_trade_no,
                trade_no=t.trade_no,
                total_amount_fen=t.amount_fen,
                refunded_fen=t.refunded_fen,
                paid_at=t.paid_at.astimezone(UTC),
            )
            for t in self.trades.values()
            if t.paid_at is not None and t.paid_at.astimezone(SHANGHAI).date() == day
        ]
