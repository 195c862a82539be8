"""The ``TradeProvider`` port on Alipay's trade API (``cqcommon.alipay.AlipayClient``).

Production talks to openapi.alipay.com; tests and the sandbox talk to ``cqdev.fake_alipay``
through the very same adapter and bytes (R-SBX-1: the sandbox is safe because its gateway
URL and keys are the fake's, not because of a code path of its own).

How Alipay's answers become the port's (R-PAY-3/4):

* no answer, a timeout, an answer whose signature does not verify, or one Alipay itself
  calls "system busy" (``outcome_unknown``) → ``ProviderUnavailableError``: the call may
  or may not have happened, and only a later query can tell. An *unsigned* error answer
  counts the same: anyone on the path could have written it, so it proves nothing.
* a signed business refusal → ``ProviderRefusedError(sub_code)``: nothing happened.
* ``ACQ.TRADE_NOT_EXIST`` is an answer, not a failure: query → None, close → closed.
* ``close`` of a trade that is not waiting for payment: Alipay says only
  ``ACQ.TRADE_STATUS_ERROR`` for both "paid" and "closed already", so the adapter asks
  ``alipay.trade.query`` which it was; paid (or paid and fully refunded since) →
  ``TradeAlreadyPaidError``.

Notifications: only the RSA2 signature is checked here, against Alipay's public key; the
app id, seller id, trade number and amount are compared with our order by the service
layer (R-PAY-7), which can then say which of them was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from datetime import date, datetime
from typing import Final, TypeVar

from cqcommon.alipay import (
    TRADE_NOT_EXIST,
    TRADE_STATUS_ERROR,
    AlipayClient,
    AlipayError,
    AlipaySignatureError,
    AlipayTransportError,
    parse_trade_notification,
    summarize_trade_bill,
)

from cqpayment.domain.provider import (
    NotificationRejectedError,
    ProviderNotification,
    ProviderRefund,
    ProviderRefusedError,
    ProviderTrade,
    ProviderUnavailableError,
    StatementLine,
    TradeAlreadyPaidError,
    TradeState,
)

T = TypeVar("T")

DEFAULT_SUBJECT_PREFIX: Final = "重庆交警罚款"
#: Alipay's limit on ``subject`` (characters).
SUBJECT_MAX_CHARS: Final = 256
#: Characters Alipay's docs forbid in ``subject`` ("不可使用特殊字符，如 /，=，&").
_SUBJECT_FORBIDDEN: Final = re.compile(r"[/=&]")
_TRADE_HAS_SUCCESS: Final = "ACQ.TRADE_HAS_SUCCESS"
_TRADE_HAS_CLOSE: Final = "ACQ.TRADE_HAS_CLOSE"
_NOTIFY_TYPE: Final = "trade_status_sync"


def _state(value: str, method: str) -> TradeState:
    try:
        return TradeState(value)
    except ValueError as exc:  # a state we do not know: we cannot act on it safely
        raise ProviderUnavailableError(f"{method}: unknown trade_status {value!r}") from exc


class AlipayTradeProvider:
    """``cqpayment.ports.TradeProvider`` on ``alipay.trade.*`` and the daily trade bill."""

    def __init__(
        self,
        client: AlipayClient,
        *,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        notify_url: str | None = None,
        seller_id: str | None = None,
    ) -> None:
        self._client = client
        self._subject_prefix = subject_prefix
        # Configured (ALIPAY_NOTIFY_URL), never built from a request: Alipay posts there.
        self._notify_url = notify_url or None
        # Sent on every create, so that Alipay refuses to collect for anyone else.
        self._seller_id = seller_id or None

    async def _call(self, method: str, awaitable: Awaitable[T]) -> T:
        """Await one client call, turning its failures into the port's errors."""
        try:
            return await awaitable
        except (AlipayTransportError, AlipaySignatureError) as exc:
            raise ProviderUnavailableError(f"{method}: {exc}") from exc
        except AlipayError as exc:
            if exc.outcome_unknown or not exc.verified:
                raise ProviderUnavailableError(f"{method}: {exc}") from exc
            raise ProviderRefusedError(exc.sub_code or exc.code, exc.sub_msg or exc.msg) from exc

    def _subject(self, subject: str) -> str:
        text = f"{self._subject_prefix} {subject}".strip() if self._subject_prefix else subject
        return _SUBJECT_FORBIDDEN.sub(" ", text)[:SUBJECT_MAX_CHARS]

    async def create_trade(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        buyer_id: str,
        expires_at: datetime,
    ) -> str:
        """``alipay.trade.create`` with ``time_expire``; the same order again finds the trade."""
        return await self._call(
            "alipay.trade.create",
            self._client.trade_create(
                out_trade_no,
                amount_fen,
                self._subject(subject),
                buyer_id,
                self._notify_url,
                time_expire=expires_at,
                seller_id=self._seller_id,
            ),
        )

    async def query_trade(self, out_trade_no: str) -> ProviderTrade | None:
        """``alipay.trade.query``; None for a trade Alipay never created."""
        method = "alipay.trade.query"
        try:
            status = await self._call(method, self._client.trade_query(out_trade_no))
        except ProviderRefusedError as exc:
            if exc.code == TRADE_NOT_EXIST:
                return None
            raise
        return ProviderTrade(
            out_trade_no=status.out_trade_no or out_trade_no,
            trade_no=status.trade_no,
            state=_state(status.trade_status, method),
            total_amount_fen=status.total_amount_fen,
            paid_at=status.paid_at,
        )

    async def close_trade(self, out_trade_no: str) -> None:
        """``alipay.trade.close``; unknown counts as closed, paid raises TradeAlreadyPaidError."""
        try:
            await self._call("alipay.trade.close", self._client.trade_close(out_trade_no))
        except ProviderRefusedError as exc:
            if exc.code in (TRADE_NOT_EXIST, _TRADE_HAS_CLOSE):
                return
            if exc.code == _TRADE_HAS_SUCCESS:
                raise TradeAlreadyPaidError(out_trade_no) from exc
            if exc.code != TRADE_STATUS_ERROR:
                raise
            # Paid, or closed already? Only the trade's state says.
            trade = await self.query_trade(out_trade_no)
            if trade is None:
                return
            if trade.state.paid or trade.paid_at is not None:
                # paid_at on a TRADE_CLOSED trade: paid, then fully refunded.
                raise TradeAlreadyPaidError(out_trade_no) from exc
            if trade.state is TradeState.TRADE_CLOSED:
                return
            raise ProviderUnavailableError(
                f"alipay.trade.close: refused while the trade is {trade.state}"
            ) from exc

    async def refund(
        self, *, out_trade_no: str, amount_fen: int, out_request_no: str, reason: str
    ) -> ProviderRefund:
        """``alipay.trade.refund``; the same ``out_request_no`` again moves no money."""
        result = await self._call(
            "alipay.trade.refund",
            self._client.trade_refund(out_trade_no, amount_fen, out_request_no, reason or None),
        )
        return ProviderRefund(
            out_trade_no=result.out_trade_no or out_trade_no,
            out_request_no=result.out_request_no,
            refunded_total_fen=result.refund_fee_fen,
            refunded_at=result.refunded_at,
        )

    def verify_notification(self, params: Mapping[str, str]) -> ProviderNotification:
        """Alipay's RSA2 signature, then the fields; ``NotificationRejectedError`` otherwise."""
        if not self._client.verify_notification_signature(params):
            raise NotificationRejectedError("bad_signature")
        if params.get("notify_type") != _NOTIFY_TYPE:
            raise NotificationRejectedError("malformed")
        try:
            parsed = parse_trade_notification(params)
            state = TradeState(parsed.trade_status)
        except ValueError as exc:
            raise NotificationRejectedError("malformed") from exc
        return ProviderNotification(
            notify_id=parsed.notify_id,
            app_id=parsed.app_id,
            seller_id=parsed.seller_id or "",
            out_trade_no=parsed.out_trade_no,
            trade_no=parsed.trade_no,
            state=state,
            total_amount_fen=parsed.total_amount_fen,
            paid_at=parsed.paid_at,
        )

    async def statement(self, day: date) -> list[StatementLine]:
        """The trade bill of ``day``: one line per trade paid that day, with the refunds of
        it made the same day. A bill Alipay has not produced yet is a refusal
        (``isp.bill_not_exist``), never an empty statement."""
        rows = await self._call("bill", self._client.trade_bill(day))
        try:
            lines = summarize_trade_bill(rows)
        except ValueError as exc:
            raise ProviderUnavailableError(f"bill: {exc}") from exc
        return [
            StatementLine(
                out_trade_no=line.out_trade_no,
                trade_no=line.trade_no,
                total_amount_fen=line.total_amount_fen,
                refunded_fen=line.refunded_fen,
                paid_at=line.paid_at,
            )
            for line in lines
        ]


__all__ = ["DEFAULT_SUBJECT_PREFIX", "AlipayTradeProvider"]
