"""Domain <-> protobuf for the payment service: the caller, the payable decision, payments
(also as the stored first response of an idempotency key), refunds, feedback, a reconciled
day, the events payment publishes and the adjudication events it learns decisions from."""

from __future__ import annotations

from datetime import date

from cqcommon.errors import VALIDATION_FAILED, DomainError
from cqcommon.events import new_envelope
from cqcommon.protomap import (
    date_from_proto,
    date_to_proto,
    timestamp_from_proto,
    timestamp_to_proto,
)
from cqtraffic.adjudication.v1 import events_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.payment.v1 import events_pb2 as events
from cqtraffic.payment.v1 import payment_pb2 as pb

from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import DecisionView, ViolationFacts
from cqpayment.domain.events import DomainEvent, FinePaid, PaymentRefunded
from cqpayment.domain.feedback import FeedbackEntry
from cqpayment.domain.payments import Payment
from cqpayment.domain.reconciliation import ReconciledDay
from cqpayment.domain.refunds import Refund

PRODUCER = "payment"


def caller_from_proto(caller: common.Caller) -> Caller:
    return Caller(
        user_id=caller.user_id,
        person_id=caller.person_id,
        staff_id=caller.staff_id,
        staff_role=caller.staff_role,
    )


def payment_to_proto(p: Payment) -> pb.Payment:
    return pb.Payment(
        payment_id=p.payment_id,
        decision_no=p.decision_no,
        amount_fen=p.amount_fen,
        state=p.state.value,
        out_trade_no=p.out_trade_no,
        provider_trade_no=p.provider_trade_no or "",
        channel=p.channel.value,
        created_at=timestamp_to_proto(p.created_at),
        paid_at=timestamp_to_proto(p.paid_at),
        violation_id=p.violation_id,
        fine_fen=p.fine_fen,
        late_fee_fen=p.late_fee_fen,
        expires_at=timestamp_to_proto(p.expires_at),
        failure_reason=p.failure_reason or "",
    )


def encode_payment(p: Payment) -> bytes:
    """The first response of an idempotency key, stored and replayed byte for byte."""
    return payment_to_proto(p).SerializeToString(deterministic=True)


def create_response(response: bytes, *, replayed: bool) -> pb.CreatePaymentResponse:
    return pb.CreatePaymentResponse(payment=pb.Payment.FromString(response), replayed=replayed)


def decision_to_proto(view: DecisionView) -> pb.PayableDecision:
    d = view.decision
    return pb.PayableDecision(
        decision_no=d.decision_no,
        violation_id=d.violation_id,
        decision_date=date_to_proto(d.decision_date),
        due_date=date_to_proto(view.amount.due_date),
        fine_fen=view.amount.fine_fen,
        late_fee_fen=view.amount.late_fee_fen,
        amount_due_fen=view.amount.total_fen,
        state=view.status.value,
        days_late=view.amount.days_late,
        payable_here=d.payable_here,
        not_payable_code=view.not_payable_code,
        authority_code=d.authority_code,
        own=view.own,
        party_name=view.party_name,
        plate_number=view.plate_number,
        violation_code=d.violation_code or "",
        description_zh=d.description_zh or "",
        occurred_at=timestamp_to_proto(d.occurred_at),
        place=d.place or "",
        points=d.points,
        disputed=d.disputed,
    )


def refund_to_proto(r: Refund) -> pb.Refund:
    return pb.Refund(
        refund_id=r.refund_id,
        payment_id=r.payment_id,
        decision_no=r.decision_no,
        amount_fen=r.amount_fen,
        state=r.state.value,
        reason=r.reason.value,
        channel=r.channel.value,
        created_at=timestamp_to_proto(r.created_at),
        approved_by=r.approved_by or "",
        refunded_at=timestamp_to_proto(r.refunded_at),
        out_request_no=r.out_request_no,
    )


def feedback_to_proto(e: FeedbackEntry) -> pb.Feedback:
    return pb.Feedback(
        feedback_id=e.feedback.feedback_id,
        payment_id=e.feedback.payment_id,
        decision_no=e.decision_no,
        text=e.feedback.text,
        created_at=timestamp_to_proto(e.feedback.created_at),
        payment_state=e.payment_state,
        out_trade_no=e.out_trade_no,
        provider_status=e.provider_status,
    )


def day_from_proto(value: common.Date, field: str) -> date | None:
    """A request's calendar day (None when unset); an impossible one is VALIDATION_FAILED."""
    try:
        return date_from_proto(value)
    except ValueError:
        raise DomainError(VALIDATION_FAILED, details={"field": field}) from None


def reconciliation_to_proto(day: ReconciledDay | None) -> pb.GetReconciliationResponse:
    """A reconciled day (R-JOB-2); a day never reconciled says so (``reconciled`` false)."""
    if day is None:
        return pb.GetReconciliationResponse(reconciled=False)
    response = pb.GetReconciliationResponse(
        mismatches=[
            pb.ReconciliationMismatch(
                kind=m.kind.value,
                out_trade_no=m.out_trade_no,
                our_amount_fen=m.our_amount_fen or 0,
                their_amount_fen=m.their_amount_fen or 0,
            )
            for m in day.mismatches
        ],
        reconciled=True,
        statement_lines=day.statement_lines,
        our_payments=day.our_payments,
    )
    response.reconciled_at.CopyFrom(timestamp_to_proto(day.completed_at))
    return response


def envelope_of(event: DomainEvent) -> EventEnvelope:
    """The outbox envelope of a domain event (key: the decision number, so a decision's
    payment events stay in order on one partition)."""
    if isinstance(event, FinePaid):
        p = event.payment
        return new_envelope(
            events.FinePaid(
                payment_id=p.payment_id,
                decision_no=p.decision_no,
                violation_id=p.violation_id,
                amount_fen=p.amount_fen,
                fine_fen=p.fine_fen,
                late_fee_fen=p.late_fee_fen,
                paid_at=timestamp_to_proto(p.paid_at),
                channel=p.channel.value,
            ),
            aggregate_id=p.decision_no,
            producer=PRODUCER,
            occurred_at=p.paid_at,
        )
    if isinstance(event, PaymentRefunded):
        r, p = event.refund, event.payment
        return new_envelope(
            events.PaymentRefunded(
                refund_id=r.refund_id,
                payment_id=p.payment_id,
                decision_no=p.decision_no,
                violation_id=p.violation_id,
                amount_fen=r.amount_fen,
                refunded_at=timestamp_to_proto(r.refunded_at),
            ),
            aggregate_id=p.decision_no,
            producer=PRODUCER,
            occurred_at=r.refunded_at,
        )
    raise TypeError(f"no wire format for {type(event).__name__}")


def facts_from_recorded(e: adj.ViolationRecorded) -> ViolationFacts:
    occurred_at = timestamp_from_proto(e.occurred_at)
    if occurred_at is None:
        raise ValueError(f"violation {e.violation_id} has no occurred_at")
    return ViolationFacts(
        violation_id=e.violation_id,
        vehicle_id=e.vehicle_id,
        licence_id=e.licence_id or None,
        plate_number=e.plate_number,
        violation_code=e.violation_code,
        description_zh=e.description_zh,
        occurred_at=occurred_at,
        place=e.place,
        fine_fen=e.fine_fen,
        points=e.points,
    )
