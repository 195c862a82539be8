"""Payment's wire formats: the stored first response of a key decodes to the same message
(R-PAY-3 replays), the events it publishes carry what the read model and adjudication read,
keyed by the decision so one decision's events stay in order."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cqcommon.events import unpack
from cqcommon.fees import amount_due
from cqpayment.domain.decisions import Decision, DecisionView, PaymentStatus
from cqpayment.domain.events import FinePaid, PaymentRefunded
from cqpayment.domain.payments import Channel, Payment, PaymentState
from cqpayment.domain.refunds import RefundState, refund_for_duplicate, refunded
from cqpayment.entrypoints.mappers import (
    create_response,
    decision_to_proto,
    encode_payment,
    envelope_of,
    payment_to_proto,
)
from cqtraffic.payment.v1 import events_pb2 as events

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
PAYMENT = Payment(
    payment_id="0b6f1f0e-0000-4000-8000-000000000001",
    decision_no="5001031234567890",
    violation_id="0b6f1f0e-0000-4000-8000-000000000002",
    channel=Channel.ALIPAY,
    state=PaymentState.SUCCEEDED,
    amount_fen=22_400,
    fine_fen=20_000,
    late_fee_fen=2_400,
    out_trade_no="20261120" + "ab" * 12,
    provider_trade_no="2026112022000000000000000001",
    payer_user_id="2088000000000001",
    payer_person_id=None,
    staff_id=None,
    created_at=NOW,
    expires_at=datetime(2026, 11, 20, 16, 0, tzinfo=UTC),
    paid_at=NOW,
)


def test_r_pay_3_stored_response_decodes_to_the_same_payment() -> None:
    stored = encode_payment(PAYMENT)
    replay = create_response(stored, replayed=True)
    assert replay.replayed and replay.payment == payment_to_proto(PAYMENT)
    assert replay.payment.SerializeToString(deterministic=True) == stored
    assert replay.payment.failure_reason == "" and replay.payment.expires_at.seconds > 0


def test_fine_paid_event_is_keyed_by_decision_with_the_amounts() -> None:
    envelope = envelope_of(FinePaid(PAYMENT))
    assert envelope.aggregate_id == PAYMENT.decision_no and envelope.producer == "payment"
    event = unpack(envelope)
    assert isinstance(event, events.FinePaid)
    assert (event.payment_id, event.violation_id, event.amount_fen, event.late_fee_fen) == (
        PAYMENT.payment_id,
        PAYMENT.violation_id,
        22_400,
        2_400,
    )
    assert event.paid_at.ToDatetime(tzinfo=UTC) == NOW and event.channel == "alipay"


def test_r_pay_5_payment_refunded_event_names_refund_payment_and_violation() -> None:
    refund = refunded(
        refund_for_duplicate(PAYMENT, refund_id="0b6f1f0e-0000-4000-8000-0000000000f1", now=NOW),
        at=NOW,
    )
    assert refund.state is RefundState.REFUNDED
    assert refund.out_request_no == "RF" + "0b6f1f0e000040008000" + "0000000000f1"  # stable
    envelope = envelope_of(PaymentRefunded(refund, PAYMENT))
    event = unpack(envelope)
    assert isinstance(event, events.PaymentRefunded)
    assert envelope.aggregate_id == PAYMENT.decision_no
    assert (event.refund_id, event.payment_id, event.violation_id, event.amount_fen) == (
        refund.refund_id,
        PAYMENT.payment_id,
        PAYMENT.violation_id,
        22_400,
    )


def test_payable_decision_message() -> None:
    decision = Decision(
        decision_no="1101051234567890",
        violation_id="v",
        decision_date=date(2026, 11, 1),
        fine_fen=20_000,
        points=3,
        party_person_id="p",
        vehicle_id="veh",
        licence_id=None,
        plate_number="渝A12345",
        violation_code="1345",
        description_zh="机动车违反禁令标志指示的",
        occurred_at=NOW,
        place="解放碑",
        disputed=False,
        learned_from="recorded",
    )
    view = DecisionView(
        decision=decision,
        amount=amount_due(20_000, date(2026, 11, 1), date(2026, 11, 20)),
        status=PaymentStatus.UNPAID,
        own=False,
        party_name="张*",
        plate_number="渝A***45",
    )
    message = decision_to_proto(view)
    assert (message.amount_due_fen, message.days_late, message.state) == (22_400, 4, "unpaid")
    assert (message.payable_here, message.not_payable_code, message.authority_code) == (
        False,
        "DECISION_NOT_PAYABLE_HERE",
        "110105",
    )
    assert (message.due_date.month, message.due_date.day) == (11, 16)
