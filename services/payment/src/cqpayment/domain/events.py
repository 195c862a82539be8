"""Domain events payment's use cases record in a unit of work (plain dataclasses); the
unit of work's adapter encodes them (protobuf envelope, topic cqtraffic.payment.payment.v1,
key = decision number) into the outbox in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass

from cqpayment.domain.payments import Payment
from cqpayment.domain.refunds import Refund


@dataclass(frozen=True)
class FinePaid:
    """A decision's fine was paid (a payment became ``succeeded``); never for a duplicate."""

    payment: Payment


@dataclass(frozen=True)
class PaymentRefunded:
    """A duplicate payment's money went back (R-PAY-5)."""

    refund: Refund
    payment: Payment


DomainEvent = FinePaid | PaymentRefunded
