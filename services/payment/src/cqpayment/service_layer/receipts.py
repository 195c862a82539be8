"""Use case: the receipt (缴款凭证) of a paid decision as a PDF (R-PAY-8).

Visible exactly like the payment (R-PAY-4: another's and an unknown id answer
PAYMENT_NOT_FOUND alike); only a ``succeeded`` payment has one (RECEIPT_NOT_AVAILABLE
otherwise). The party's name and plate are whole for the party and staff, masked for
another payer (R-Q-4). The receipt is dated by the payment (``issued_at`` = paid time), so
downloading it again gives the same document.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.errors import PAYMENT_NOT_FOUND, RECEIPT_NOT_AVAILABLE, DomainError
from cqcommon.pdf import render_off_loop

from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import Decision, shown_party
from cqpayment.domain.payments import Payment, PaymentState
from cqpayment.domain.receipts import Receipt, ReceiptViolation, receipt_filename
from cqpayment.ports import ReceiptRenderer
from cqpayment.service_layer.config import Deps

PDF = "application/pdf"


@dataclass(frozen=True)
class Document:
    filename: str
    content_type: str
    content: bytes


def build_receipt(
    payment: Payment, decision: Decision, *, party_name: str, caller: Caller
) -> Receipt:
    """The receipt's data, masked for a caller who is not the party (nor staff)."""
    if payment.paid_at is None or decision.occurred_at is None:
        # the violation's facts have not reached payment yet: come back shortly
        raise DomainError(RECEIPT_NOT_AVAILABLE, details={"reason": "details_pending"})
    name, plate = shown_party(decision, party_name=party_name, caller=caller)
    return Receipt(
        payment_id=payment.payment_id,
        decision_no=payment.decision_no,
        violation=ReceiptViolation(
            code=decision.violation_code or "",
            description_zh=decision.description_zh or "",
            occurred_at=decision.occurred_at,
            place=decision.place or "",
        ),
        plate_number=plate,
        party_name=name,
        fine_fen=payment.fine_fen,
        late_fee_fen=payment.late_fee_fen,
        amount_fen=payment.amount_fen,
        paid_at=payment.paid_at,
        channel=payment.channel.value,
        provider_trade_no=payment.provider_trade_no or "",
        out_trade_no=payment.out_trade_no,
        issued_at=payment.paid_at,
    )


async def get_receipt(
    deps: Deps, *, renderer: ReceiptRenderer, caller: Caller, payment_id: str
) -> Document:
    async with deps.uows().reading() as uow:
        payment = await uow.payments.get_for(payment_id, caller)
        if payment is None:
            raise DomainError(PAYMENT_NOT_FOUND)
        if payment.state is not PaymentState.SUCCEEDED:
            raise DomainError(RECEIPT_NOT_AVAILABLE, details={"state": payment.state.value})
        decision = await uow.decisions.get(payment.decision_no)
        if decision is None:  # pragma: no cover - the foreign key says it exists
            raise DomainError(PAYMENT_NOT_FOUND)
        name = (
            await uow.decisions.party_name(decision.party_person_id)
            if decision.party_person_id
            else None
        )
    receipt = build_receipt(payment, decision, party_name=name or "", caller=caller)
    # laying out a PDF is CPU work: off the event loop, on the documents' own thread
    content = await render_off_loop(renderer.render, receipt)
    return Document(filename=receipt_filename(receipt), content_type=PDF, content=content)


__all__ = ["Document", "build_receipt", "get_receipt"]
