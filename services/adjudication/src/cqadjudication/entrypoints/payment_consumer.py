"""Closes cases when their fine is paid: ``FinePaid`` from the payment service marks the
violation ``paid`` (R-Q-5), and ``PaymentRefunded`` opens it again unless another payment
still stands (R-PAY-5: refunding a duplicate leaves the case paid). Applied inside the inbox
transaction, so a redelivered event is applied once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from cqcommon.db import Conn
from cqcommon.events import TOPIC_PAYMENT
from cqcommon.inbox import Handler, ReceivedEvent
from cqcommon.protomap import timestamp_from_proto
from cqcommon.runner import ConsumerSpec, ServiceContext
from cqtraffic.payment.v1 import events_pb2 as pay
from google.protobuf.timestamp_pb2 import Timestamp

from cqadjudication.adapters.postgres_payments import PostgresPaymentFacts
from cqadjudication.ports import PaymentFacts

PaymentFactsFactory = Callable[[Conn], PaymentFacts]


def _at(value: Timestamp, event: ReceivedEvent) -> datetime:
    """The event's own time field, else the envelope's occurred_at."""
    at = timestamp_from_proto(value) or timestamp_from_proto(event.envelope.occurred_at)
    if at is None:
        raise ValueError(f"event {event.envelope.event_id} has no time")
    return at


async def on_fine_paid(facts: PaymentFacts, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, pay.FinePaid)
    await facts.fine_paid(
        payment_id=e.payment_id,
        violation_id=e.violation_id,
        decision_no=e.decision_no,
        paid_at=_at(e.paid_at, event),
    )


async def on_refunded(facts: PaymentFacts, event: ReceivedEvent) -> None:
    e = event.payload
    assert isinstance(e, pay.PaymentRefunded)
    await facts.payment_refunded(
        payment_id=e.payment_id,
        violation_id=e.violation_id,
        decision_no=e.decision_no,
        refunded_at=_at(e.refunded_at, event),
    )


def handlers(
    ctx: ServiceContext, payment_facts: PaymentFactsFactory = PostgresPaymentFacts
) -> Mapping[str, Handler]:
    def handle_paid(conn: Conn, event: ReceivedEvent) -> Awaitable[None]:
        return on_fine_paid(payment_facts(conn), event)

    def handle_refunded(conn: Conn, event: ReceivedEvent) -> Awaitable[None]:
        return on_refunded(payment_facts(conn), event)

    return {
        pay.FinePaid.DESCRIPTOR.full_name: handle_paid,
        pay.PaymentRefunded.DESCRIPTOR.full_name: handle_refunded,
    }


PAYMENT_CONSUMER = ConsumerSpec(
    group_id="adjudication.payments", topics=[TOPIC_PAYMENT], handlers=handlers
)
