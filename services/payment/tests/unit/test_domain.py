"""Payment's pure rules: the maintenance window as the use cases apply it (R-PAY-6), the
idempotency-key judgments (R-PAY-3), the payment state machine (R-PAY-3/4/5), expiry at
Asia/Shanghai midnight (R-PAY-2), order numbers, masking (R-Q-4) and payability (R-PAY-1)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from cqcommon.clock import SHANGHAI
from cqcommon.errors import DomainError
from cqcommon.maintenance import MaintenanceWindow
from cqcommon.masking import mask_plate
from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import Decision
from cqpayment.domain.feedback import validate_text
from cqpayment.domain.idempotency import (
    Claim,
    KeyId,
    KeyState,
    Operation,
    StoredKey,
    judge_claim,
    scope_of,
)
from cqpayment.domain.payments import (
    Channel,
    FailureReason,
    Payment,
    PaymentState,
    TradeOutcome,
    new_out_trade_no,
    next_local_midnight,
    settle_failed,
    settle_paid,
    trade_outcome,
)
from cqpayment.domain.provider import ProviderTrade, TradeState
from cqpayment.service_layer.config import PaymentConfig

WINDOW = PaymentConfig(window=MaintenanceWindow())


def _at(hh: int, mm: int, ss: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hh, mm, ss, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("now", "refused", "retry_after_s"),
    [
        (_at(21, 59, 59), False, None),
        (_at(22, 0, 0), True, 9_000),
        (_at(0, 29, 59, day=21), True, 1),
        (_at(0, 30, 0, day=21), False, None),
    ],
    ids=["21:59:59", "22:00:00", "00:29:59", "00:30:00"],
)
def test_r_pay_6_window_boundaries(now: datetime, refused: bool, retry_after_s: int | None) -> None:
    if not refused:
        WINDOW.check_window(now)
        return
    with pytest.raises(DomainError) as info:
        WINDOW.check_window(now)
    assert info.value.code == "MAINTENANCE_WINDOW"
    assert info.value.details["retry_after_s"] == retry_after_s
    assert info.value.details["resumes_at"] == "2026-11-21T00:30:00+08:00"


def test_r_pay_6_window_off_when_not_configured() -> None:
    PaymentConfig(window=None).check_window(_at(23, 0))


class _Settings:
    alipay_app_id = "app"
    alipay_seller_id = "seller"
    alipay_timeout_s = 2.0
    idempotency_key_retention_h = 48
    idempotency_lock_timeout_s = 30.0
    payment_pending_resolve_after_s = 300
    payment_feedback_max = 5
    payment_maintenance_window = ""
    aliyun_sms_overdue_template_code = "SMS_OVERDUE"


def test_config_from_settings_reads_the_window_setting() -> None:
    assert PaymentConfig.from_settings(_Settings()).window is None
    s = _Settings()
    s.payment_maintenance_window = "22:00-00:30"
    config = PaymentConfig.from_settings(s)
    assert config.window == MaintenanceWindow() and config.key_retention == timedelta(hours=48)


NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
KEY = KeyId("user:2088", Operation.CREATE_PAYMENT, "k")


def _key(**changes: object) -> StoredKey:
    stored = StoredKey(
        id=KEY,
        request_hash="h",
        state=KeyState.IN_FLIGHT,
        payment_id=None,
        response=None,
        locked_at=NOW,
        created_at=NOW,
        completed_at=None,
    )
    return dataclasses.replace(stored, **changes)  # type: ignore[arg-type]


def _judge(stored: StoredKey, request_hash: str = "h", *, after_s: float = 1) -> Claim:
    return judge_claim(
        stored,
        request_hash=request_hash,
        now=NOW + timedelta(seconds=after_s),
        lock_timeout=timedelta(seconds=30),
    )


def test_r_pay_3_key_judgments() -> None:
    done = _key(state=KeyState.COMPLETED, response=b"x", completed_at=NOW)
    assert _judge(done) is Claim.REPLAY
    for stored in (done, _key()):
        with pytest.raises(DomainError) as info:
            _judge(stored, "other")
        assert info.value.code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(DomainError) as info:
        _judge(_key())
    assert info.value.code == "IDEMPOTENCY_KEY_IN_USE"
    assert _judge(_key(), after_s=30) is Claim.TAKE_OVER  # the lock went stale
    assert _judge(_key(locked_at=None)) is Claim.TAKE_OVER  # given up without an outcome


def test_r_pay_3_keys_are_scoped_per_caller() -> None:
    assert scope_of(Caller(user_id="2088001")) == "user:2088001"
    assert scope_of(Caller(staff_id="clerk01", staff_role="clerk")) == "staff:clerk01"


def _payment(**changes: object) -> Payment:
    payment = Payment(
        payment_id="p1",
        decision_no="5001031234567890",
        violation_id="v1",
        channel=Channel.ALIPAY,
        state=PaymentState.PENDING,
        amount_fen=20_000,
        fine_fen=20_000,
        late_fee_fen=0,
        out_trade_no="20261120" + "a" * 24,
        provider_trade_no="T1",
        payer_user_id="2088001",
        payer_person_id=None,
        staff_id=None,
        created_at=NOW,
        expires_at=next_local_midnight(NOW),
    )
    return dataclasses.replace(payment, **changes)  # type: ignore[arg-type]


def test_r_pay_5_paid_becomes_succeeded_or_duplicate_once() -> None:
    paid = settle_paid(_payment(), other_succeeded=False, provider_trade_no="T1", paid_at=NOW)
    assert paid is not None and paid.state is PaymentState.SUCCEEDED and paid.paid_at == NOW
    dup = settle_paid(_payment(), other_succeeded=True, provider_trade_no="T1", paid_at=NOW)
    assert dup is not None and dup.state is PaymentState.DUPLICATE
    for settled in (paid, dup):
        assert (
            settle_paid(settled, other_succeeded=False, provider_trade_no="T", paid_at=NOW) is None
        )
        assert settle_failed(settled, FailureReason.CLOSED) is None  # never the other way round
    failed = settle_failed(_payment(), FailureReason.CLOSED)
    assert failed is not None and failed.failure_reason == "closed"
    healed = settle_paid(failed, other_succeeded=False, provider_trade_no="T1", paid_at=NOW)
    assert healed is not None and healed.state is PaymentState.SUCCEEDED  # money is the truth
    assert healed.failure_reason is None


def test_r_pay_4_trade_outcomes() -> None:
    p = _payment()

    def trade(state: TradeState) -> ProviderTrade:
        return ProviderTrade(p.out_trade_no, "T1", state, p.amount_fen)

    assert trade_outcome(p, trade(TradeState.TRADE_SUCCESS), NOW) is TradeOutcome.PAID
    assert trade_outcome(p, trade(TradeState.TRADE_FINISHED), NOW) is TradeOutcome.PAID
    assert trade_outcome(p, trade(TradeState.TRADE_CLOSED), NOW) is TradeOutcome.CLOSED
    assert trade_outcome(p, trade(TradeState.WAIT_BUYER_PAY), NOW) is TradeOutcome.WAITING
    assert trade_outcome(p, None, NOW) is TradeOutcome.WAITING  # the create may be on its way
    assert trade_outcome(p, None, p.expires_at) is TradeOutcome.EXPIRED


def test_r_pay_2_payment_expires_at_the_next_shanghai_midnight() -> None:
    assert next_local_midnight(_at(23, 59, 59)) == _at(0, 0, day=21)
    assert next_local_midnight(_at(0, 0, 0, day=21)) == _at(0, 0, day=22)
    # 15:59 UTC is 23:59 in Chongqing; 16:00 UTC is already the next day there
    assert next_local_midnight(datetime(2026, 11, 20, 15, 59, tzinfo=UTC)) == _at(0, 0, day=21)
    assert next_local_midnight(datetime(2026, 11, 20, 16, 0, tzinfo=UTC)) == _at(0, 0, day=22)


def test_order_numbers_are_the_local_date_and_random_hex() -> None:
    assert new_out_trade_no(datetime(2026, 11, 20, 16, 30, tzinfo=UTC), "ab" * 12) == (
        "20261121" + "ab" * 12
    )
    with pytest.raises(ValueError):
        new_out_trade_no(NOW, "short")


def test_r_q_4_plates_are_masked_keeping_province_letter_and_last_two() -> None:
    assert mask_plate("渝A12345") == "渝A***45"
    assert mask_plate("渝AD12345") == "渝A****45"
    assert mask_plate("渝A1") == "***"


def test_r_pay_1_only_chongqing_decisions_are_payable_here() -> None:
    def decision(no: str) -> Decision:
        return Decision(
            no,
            "v",
            date(2026, 11, 1),
            100,
            0,
            None,
            "veh",
            None,
            None,
            None,
            None,
            None,
            None,
            False,
            "recorded",
        )

    assert decision("5001031234567890").payable_here
    assert not decision("1101051234567890").payable_here
    assert decision("1101051234567890").authority_code == "110105"


def test_r_pay_9_feedback_text_is_stripped_and_bounded() -> None:
    assert validate_text("  已扣款\n未销账 ") == "已扣款\n未销账"
    for bad in ("", "   ", "x" * 501, "bad\u202echars"):
        with pytest.raises(DomainError):
            validate_text(bad)
