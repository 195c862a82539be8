"""Payments end to end against the real PostgreSQL and the real payment gRPC server, whose
provider is the real Alipay adapter talking to the session's fake Alipay server:

- R-PAY-3: 50 concurrent creates for one decision (one payer, and many) leave at most one
  pending payment and, once every trade the provider has is paid, exactly one success;
  keys replay byte for byte, answer 422 for another body and 409 while in flight;
- R-PAY-7: a notification replayed 15 times (10 at once) makes one state change and one
  ``FinePaid``; forged and mismatching ones are rejected and counted;
- R-PAY-4: a payment paid at the provider whose notification was lost (the "crash between
  the provider's success and our commit") is healed by reading it, no second trade;
- R-PAY-5: a counter payment and an online success: the later is a duplicate, refunded
  through the provider after a supervisor approves, ``PaymentRefunded`` in the outbox;
- R-PAY-6: the window refuses new payments with the seconds to 00:30 (fixed clock);
- R-PAY-4/8/9: another user's payment answers PAYMENT_NOT_FOUND exactly like an unknown
  id on every payment call; receipts are PDFs; R-JOB-1 resolves stuck payments.

``PAYMENT_STORM_ROUNDS`` sets the storm's rounds (3 here, CI-sized; the bench runs more).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.events import unpack
from cqcommon.grpc_client import call
from cqcommon.settings import Settings
from cqdev.fake_alipay import FakeAlipay
from cqdev.testing import fetch_rows
from cqpayment.adapters.postgres_copy import PostgresDecisionCopy
from cqpayment.domain.decisions import ViolationFacts
from cqpayment.service_layer.learning import learn_recorded
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.events.v1.envelope_pb2 import EventEnvelope
from cqtraffic.payment.v1 import events_pb2 as events
from cqtraffic.payment.v1 import payment_pb2 as pb

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

    from cqcommon.clock import Clock
    from cqtraffic.payment.v1.payment_pb2_grpc import PaymentServiceAsyncStub

    PaymentAt = Callable[[Clock], AbstractAsyncContextManager[PaymentServiceAsyncStub]]

pytestmark = pytest.mark.integration

STORM_ROUNDS = int(os.environ.get("PAYMENT_STORM_ROUNDS", "3"))
STORM_SIZE = 50
CLERK = common.Caller(staff_id="clerk01", staff_role="clerk")
SUPERVISOR = common.Caller(staff_id="super01", staff_role="supervisor")
NIL = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Party:
    """A registry person with a car (payment's registry copy), logged in as a user."""

    person_id: str
    name: str
    plate_number: str
    user_id: str

    @property
    def caller(self) -> common.Caller:
        return common.Caller(user_id=self.user_id, person_id=self.person_id)


@dataclass(frozen=True)
class Payable:
    decision_no: str
    violation_id: str
    party: Party


def stranger() -> common.Caller:
    """A logged-in user who is nobody's party."""
    return common.Caller(user_id=f"2088{random.randrange(10**11, 10**12)}")


async def new_decision(
    db: Database, *, fine_fen: int = 20_000, decision_date: date | None = None
) -> Payable:
    """A person, their car and a decided violation, written by the consumers' code."""
    party = Party(
        person_id=str(uuid.uuid4()),
        name="张伟",
        plate_number=f"渝B{random.randrange(10_000, 100_000)}",
        user_id=f"2088{random.randrange(10**11, 10**12)}",
    )
    vehicle_id, violation_id = str(uuid.uuid4()), str(uuid.uuid4())
    decision_no = f"500103{random.randrange(10**10):010d}"
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        copy = PostgresDecisionCopy(conn)
        await copy.upsert_person(person_id=party.person_id, name=party.name)
        await copy.upsert_vehicle(
            vehicle_id=vehicle_id, owner_person_id=party.person_id, plate_number=party.plate_number
        )
        await learn_recorded(
            copy,
            ViolationFacts(
                violation_id=violation_id,
                vehicle_id=vehicle_id,
                licence_id=None,
                plate_number=party.plate_number,
                violation_code="1345",
                description_zh="机动车违反禁令标志指示的",
                occurred_at=now - timedelta(days=3),
                place="重庆市渝中区解放碑",
                fine_fen=fine_fen,
                points=3,
            ),
            decision_no=decision_no,
            decision_date=decision_date or now.astimezone(SHANGHAI).date(),
            now=now,
        )
    return Payable(decision_no, violation_id, party)


async def create(
    stub: PaymentServiceAsyncStub,
    caller: common.Caller,
    decision_no: str,
    key: str,
    request_hash: str = "hash-1",
) -> pb.CreatePaymentResponse:
    return await call(
        stub.CreatePayment,
        pb.CreatePaymentRequest(
            caller=caller, decision_no=decision_no, idempotency_key=key, request_hash=request_hash
        ),
        timeout_s=30,
    )


async def counter(
    stub: PaymentServiceAsyncStub, decision_no: str, key: str, method: str = "cash"
) -> pb.CreatePaymentResponse:
    return await call(
        stub.CreateCounterPayment,
        pb.CreateCounterPaymentRequest(
            caller=CLERK,
            decision_no=decision_no,
            method=method,
            idempotency_key=key,
            request_hash=f"counter-{decision_no}-{method}",
        ),
        timeout_s=30,
    )


async def get(stub: PaymentServiceAsyncStub, caller: common.Caller, payment_id: str) -> pb.Payment:
    return await call(
        stub.GetPayment, pb.GetPaymentRequest(caller=caller, payment_id=payment_id), timeout_s=10
    )


async def notify(
    stub: PaymentServiceAsyncStub, params: dict[str, str]
) -> pb.ProviderNotificationResponse:
    return await call(
        stub.RecordProviderNotification,
        pb.ProviderNotificationRequest(params=params),
        timeout_s=10,
    )


async def code_of(awaitable: Awaitable[Any]) -> str:
    with pytest.raises(DomainError) as info:
        await awaitable
    return info.value.code


async def payments_of(settings: Settings, decision_no: str) -> list[tuple[Any, ...]]:
    return await fetch_rows(
        settings.database_url,
        "SELECT payment_id::text, state, out_trade_no, channel FROM payment.payments"
        " WHERE decision_no = %s ORDER BY created_at",
        decision_no,
    )


async def outbox_of(settings: Settings, decision_no: str) -> list[Any]:
    rows = await fetch_rows(
        settings.database_url,
        "SELECT envelope FROM payment.outbox WHERE message_key = %s ORDER BY id",
        decision_no,
    )
    envelopes = [EventEnvelope.FromString(bytes(r[0])) for r in rows]
    return [unpack(e) for e in envelopes]


# -- R-PAY-3: the storm -------------------------------------------------------------------
@pytest.mark.parametrize("payers", ["one_payer", "many_payers"])
async def test_r_pay_3_50_concurrent_creates_charge_exactly_once(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    fake_alipay: FakeAlipay,
    test_settings: Settings,
    payers: str,
) -> None:
    """R-PAY-3: 50 racing creates per round with different keys → at most one payment in
    progress; after the buyer pays every trade the provider has (and every notification
    arrives), exactly one payment succeeded and one FinePaid was recorded."""
    for round_no in range(STORM_ROUNDS):
        d = await new_decision(payment_db)
        callers = (
            [d.party.caller] * STORM_SIZE
            if payers == "one_payer"
            else [d.party.caller if i % 5 == 0 else stranger() for i in range(STORM_SIZE)]
        )
        results = await asyncio.gather(
            *(
                create(payment, caller, d.decision_no, f"storm-{round_no}-{i}")
                for i, caller in enumerate(callers)
            ),
            return_exceptions=True,
        )
        answered = [r for r in results if isinstance(r, pb.CreatePaymentResponse)]
        refused = [r for r in results if not isinstance(r, pb.CreatePaymentResponse)]
        assert {type(r) for r in refused} <= {DomainError}, refused
        assert {r.code for r in refused if isinstance(r, DomainError)} <= {"PAYMENT_IN_PROGRESS"}
        assert len({r.payment.payment_id for r in answered}) == 1  # one payment for all
        rows = await payments_of(test_settings, d.decision_no)
        assert [state for _, state, _, _ in rows] == ["pending"]
        # the buyer pays every trade the provider has for this decision, all notify
        for _, _, out_trade_no, _ in rows:
            if fake_alipay.trade(out_trade_no) is not None:
                fake_alipay.pay(out_trade_no)
                assert (
                    await notify(payment, fake_alipay.notification_params(out_trade_no))
                ).accepted
        rows = await payments_of(test_settings, d.decision_no)
        assert [state for _, state, _, _ in rows] == ["succeeded"]
        assert (
            len(
                [
                    e
                    for e in await outbox_of(test_settings, d.decision_no)
                    if isinstance(e, events.FinePaid)
                ]
            )
            == 1
        )


# -- R-PAY-3: idempotency keys --------------------------------------------------------------
async def test_r_pay_3_same_key_same_body_replays_identical_bytes_other_body_is_422(
    payment: PaymentServiceAsyncStub, payment_db: Database, fake_alipay: FakeAlipay
) -> None:
    d = await new_decision(payment_db)
    first = await create(payment, d.party.caller, d.decision_no, "k-replay", "h1")
    again = await create(payment, d.party.caller, d.decision_no, "k-replay", "h1")
    assert not first.replayed and again.replayed
    assert again.payment.SerializeToString() == first.payment.SerializeToString()
    assert first.payment.provider_trade_no and first.payment.state == "pending"
    assert len(fake_alipay.calls_of("alipay.trade.create")) >= 1
    assert await code_of(create(payment, d.party.caller, d.decision_no, "k-replay", "h2")) == (
        "IDEMPOTENCY_KEY_REUSED"
    )
    # keys are scoped per user: another user's same key is another request (refused only
    # because this payment is in progress, not as a reused key)
    assert await code_of(create(payment, stranger(), d.decision_no, "k-replay", "h1")) == (
        "PAYMENT_IN_PROGRESS"
    )


async def test_r_pay_3_same_key_while_in_flight_is_409(
    payment: PaymentServiceAsyncStub, payment_db: Database, fake_alipay: FakeAlipay
) -> None:
    d = await new_decision(payment_db)
    fake_alipay.delay_next("alipay.trade.create", 1.5)
    first = asyncio.create_task(create(payment, d.party.caller, d.decision_no, "k-slow"))
    await asyncio.sleep(0.5)
    assert await code_of(create(payment, d.party.caller, d.decision_no, "k-slow")) == (
        "IDEMPOTENCY_KEY_IN_USE"
    )
    done = await first
    again = await create(payment, d.party.caller, d.decision_no, "k-slow")
    assert again.replayed and again.payment == done.payment


# -- R-PAY-7: notifications -------------------------------------------------------------
async def test_r_pay_7_notification_replayed_15_times_10_at_once_changes_state_once(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    fake_alipay: FakeAlipay,
    test_settings: Settings,
) -> None:
    d = await new_decision(payment_db)
    created = await create(payment, d.party.caller, d.decision_no, "k-notify")
    out = created.payment.out_trade_no
    fake_alipay.pay(out)
    params = fake_alipay.notification_params(out)
    answers = await asyncio.gather(*(notify(payment, params) for _ in range(10)))
    answers += [await notify(payment, params) for _ in range(5)]
    assert all(a.accepted for a in answers) and len(answers) == 15
    seen = await get(payment, d.party.caller, created.payment.payment_id)
    assert seen.state == "succeeded" and seen.paid_at.seconds > 0
    paid = [
        e for e in await outbox_of(test_settings, d.decision_no) if isinstance(e, events.FinePaid)
    ]
    assert len(paid) == 1
    assert (paid[0].payment_id, paid[0].violation_id, paid[0].amount_fen, paid[0].channel) == (
        created.payment.payment_id,
        d.violation_id,
        20_000,
        "alipay",
    )
    rows = await fetch_rows(
        test_settings.database_url,
        "SELECT count(*) FROM payment.notifications WHERE out_trade_no = %s",
        out,
    )
    assert rows == [(1,)]
    # a late TRADE_CLOSED (out of order) changes nothing
    late = fake_alipay.notification_params(out, trade_status="TRADE_CLOSED")
    assert (await notify(payment, late)).accepted
    assert (await get(payment, d.party.caller, created.payment.payment_id)).state == "succeeded"


async def test_r_pay_7_forged_and_mismatching_notifications_are_rejected(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    fake_alipay: FakeAlipay,
    test_settings: Settings,
) -> None:
    d = await new_decision(payment_db)
    created = await create(payment, d.party.caller, d.decision_no, "k-forged")
    out = created.payment.out_trade_no
    fake_alipay.pay(out)
    cases = {
        "bad_signature": fake_alipay.notification_params(out, forged=True),
        "amount_mismatch": fake_alipay.notification_params(out, overrides={"total_amount": "0.01"}),
        "app_id_mismatch": fake_alipay.notification_params(out, overrides={"app_id": "2021009"}),
        "seller_id_mismatch": fake_alipay.notification_params(
            out, overrides={"seller_id": "2088009"}
        ),
        "unknown_trade": fake_alipay.notification_params(
            out, overrides={"out_trade_no": "20260101" + "0" * 24}
        ),
    }
    for reason, params in cases.items():
        answer = await notify(payment, params)
        assert (answer.accepted, answer.rejected_reason) == (False, reason)
    assert (
        await fetch_rows(
            test_settings.database_url,
            "SELECT payment_id FROM payment.payments WHERE out_trade_no = %s AND state = 'pending'",
            out,
        )
    ) != []
    rows = await fetch_rows(
        test_settings.database_url,
        "SELECT reason FROM payment.rejected_notifications WHERE out_trade_no IN (%s, %s)",
        out,
        "20260101" + "0" * 24,
    )
    assert sorted(r[0] for r in rows) == sorted(cases)


# -- R-PAY-4: the crash between the provider's success and our commit ---------------------------
async def test_r_pay_4_lost_notification_is_healed_by_reading_without_a_second_trade(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    fake_alipay: FakeAlipay,
    test_settings: Settings,
) -> None:
    d = await new_decision(payment_db)
    created = await create(payment, d.party.caller, d.decision_no, "k-crash")
    out = created.payment.out_trade_no
    creates_before = len([c for c in fake_alipay.calls_of("alipay.trade.create")])
    fake_alipay.pay(out)  # paid at Alipay; the notification never reaches us
    healed = await get(payment, d.party.caller, created.payment.payment_id)
    assert healed.state == "succeeded"
    assert healed.provider_trade_no == created.payment.provider_trade_no
    # retrying the create with the same key replays; a new key finds it paid
    assert (await create(payment, d.party.caller, d.decision_no, "k-crash")).replayed
    assert (
        await code_of(create(payment, d.party.caller, d.decision_no, "k-crash-2")) == "ALREADY_PAID"
    )
    assert len(fake_alipay.calls_of("alipay.trade.create")) == creates_before
    assert fake_alipay.trade(out) is not None and fake_alipay.trade(out).status == "TRADE_SUCCESS"  # type: ignore[union-attr]
    paid = [
        e for e in await outbox_of(test_settings, d.decision_no) if isinstance(e, events.FinePaid)
    ]
    assert len(paid) == 1


async def test_r_job_1_the_job_resolves_stuck_pending_payments(
    payment: PaymentServiceAsyncStub, payment_db: Database, fake_alipay: FakeAlipay
) -> None:
    d = await new_decision(payment_db)
    created = await create(payment, d.party.caller, d.decision_no, "k-job")
    fake_alipay.pay(created.payment.out_trade_no)
    # payment_pending_resolve_after_s: make the payment look 10 minutes old
    async with payment_db.transaction() as conn:
        await conn.execute(
            "UPDATE payments SET created_at = created_at - interval '10 minutes'"
            " WHERE payment_id = %s",
            (created.payment.payment_id,),
        )
    checkpoint, done, resolved = "", False, 0
    for _ in range(100):  # bounded: the job pages through every stuck payment of the session
        batch = await call(
            payment.RunJob,
            jobs_pb2.RunJobRequest(
                job="resolve_pending_payments", checkpoint=checkpoint, batch_size=50
            ),
            timeout_s=60,
        )
        checkpoint, done, resolved = batch.checkpoint, batch.done, resolved + batch.items_done
        if done:
            break
    assert done and resolved >= 1
    assert (await get(payment, CLERK, created.payment.payment_id)).state == "succeeded"
    reaped = await call(
        payment.RunJob,
        jobs_pb2.RunJobRequest(job="reap_idempotency_keys", batch_size=10),
        timeout_s=10,
    )
    assert reaped.done  # nothing is 48 h old yet
    assert await code_of(call(payment.RunJob, jobs_pb2.RunJobRequest(job="nope"), timeout_s=5)) == (
        "UNKNOWN_JOB"
    )


# -- R-PAY-5: duplicates and refunds ------------------------------------------------------------
async def test_r_pay_5_counter_then_online_success_is_a_duplicate_refunded_on_approval(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    fake_alipay: FakeAlipay,
    test_settings: Settings,
) -> None:
    d = await new_decision(payment_db)
    online = await create(payment, d.party.caller, d.decision_no, "k-dup")
    out = online.payment.out_trade_no
    # the counter cannot close the online trade (Alipay busy): it takes the cash anyway
    fake_alipay.fail_next("alipay.trade.close")
    cash = await counter(payment, d.decision_no, f"desk-{d.decision_no}")
    assert (cash.payment.state, cash.payment.channel) == ("succeeded", "counter_cash")
    fake_alipay.pay(out)  # the buyer pays online at the same moment
    assert (await notify(payment, fake_alipay.notification_params(out))).accepted
    dup = await get(payment, d.party.caller, online.payment.payment_id)
    assert dup.state == "duplicate"
    listed = await call(
        payment.ListRefunds,
        pb.ListRefundsRequest(caller=CLERK, status="pending_approval"),
        timeout_s=10,
    )
    (refund,) = [r for r in listed.refunds if r.payment_id == dup.payment_id]
    assert (refund.amount_fen, refund.reason, refund.channel) == (
        dup.amount_fen,
        "duplicate",
        "alipay",
    )
    assert (
        await code_of(
            call(
                payment.ApproveRefund,
                pb.ApproveRefundRequest(caller=CLERK, refund_id=refund.refund_id),
                timeout_s=10,
            )
        )
        == "SUPERVISOR_REQUIRED"
    )
    done = await call(
        payment.ApproveRefund,
        pb.ApproveRefundRequest(caller=SUPERVISOR, refund_id=refund.refund_id),
        timeout_s=30,
    )
    assert (done.state, done.approved_by) == ("refunded", "super01")
    assert (await get(payment, d.party.caller, dup.payment_id)).state == "refunded"
    trade = fake_alipay.trade(out)
    assert trade is not None and trade.refunded_fen == dup.amount_fen
    published = await outbox_of(test_settings, d.decision_no)
    assert [type(e).__name__ for e in published] == ["FinePaid", "PaymentRefunded"]
    assert published[0].payment_id == cash.payment.payment_id
    assert (published[1].refund_id, published[1].payment_id) == (refund.refund_id, dup.payment_id)


async def test_r_pay_5_counter_closes_the_online_trade_or_finds_it_paid(
    payment: PaymentServiceAsyncStub, payment_db: Database, fake_alipay: FakeAlipay
) -> None:
    d = await new_decision(payment_db)
    online = await create(payment, d.party.caller, d.decision_no, "k-close")
    cash = await counter(payment, d.decision_no, f"desk-{d.decision_no}", method="card")
    assert cash.payment.channel == "counter_card"
    assert (await get(payment, CLERK, online.payment.payment_id)).state == "failed"
    trade = fake_alipay.trade(online.payment.out_trade_no)
    assert trade is not None and trade.status == "TRADE_CLOSED"
    # paid online before the desk acts: no cash is taken
    e = await new_decision(payment_db)
    paid_online = await create(payment, e.party.caller, e.decision_no, "k-paid-first")
    fake_alipay.pay(paid_online.payment.out_trade_no)
    assert await code_of(counter(payment, e.decision_no, f"desk-{e.decision_no}")) == "ALREADY_PAID"
    assert (await get(payment, CLERK, paid_online.payment.payment_id)).state == "succeeded"


# -- R-PAY-6: the maintenance window ----------------------------------------------------------
async def test_r_pay_6_window_refuses_new_payments_until_00_30(
    payment_at: PaymentAt, payment_db: Database
) -> None:
    d = await new_decision(payment_db)
    clock = FixedClock(datetime(2026, 11, 20, 23, 0, tzinfo=SHANGHAI))
    async with payment_at(clock) as stub:
        with pytest.raises(DomainError) as info:
            await create(stub, d.party.caller, d.decision_no, "k-window")
        assert info.value.code == "MAINTENANCE_WINDOW"
        assert info.value.details == {
            "retry_after_s": 5_400,
            "resumes_at": "2026-11-21T00:30:00+08:00",
        }
        assert await code_of(counter(stub, d.decision_no, "desk-window")) == "MAINTENANCE_WINDOW"
        # reading is never refused
        decision = await call(
            stub.GetDecision,
            pb.GetDecisionRequest(caller=d.party.caller, decision_no=d.decision_no),
            timeout_s=10,
        )
        assert decision.state == "unpaid"


# -- R-PAY-4/8/9: another's payment is not found, like an unknown one ---------------------------
async def test_r_pay_4_anothers_payment_answers_like_an_unknown_one_on_every_call(
    payment: PaymentServiceAsyncStub, payment_db: Database, fake_alipay: FakeAlipay
) -> None:
    d = await new_decision(payment_db)
    created = await create(payment, d.party.caller, d.decision_no, "k-foreign")
    fake_alipay.pay(created.payment.out_trade_no)
    other = stranger()
    pid = created.payment.payment_id
    calls: list[Callable[[str], Awaitable[Any]]] = [
        lambda p: get(payment, other, p),
        lambda p: call(
            payment.GetReceipt, pb.GetReceiptRequest(caller=other, payment_id=p), timeout_s=10
        ),
        lambda p: call(
            payment.FileFeedback,
            pb.FileFeedbackRequest(caller=other, payment_id=p, text="已扣款"),
            timeout_s=10,
        ),
    ]
    for attempt in calls:
        foreign = await code_of(attempt(pid))
        unknown = await code_of(attempt(str(uuid.uuid4())))
        garbage = await code_of(attempt("not-a-uuid"))
        assert foreign == unknown == garbage == "PAYMENT_NOT_FOUND"
    # the payer sees it (and the read heals it to succeeded), with a PDF receipt
    assert (await get(payment, d.party.caller, pid)).state == "succeeded"
    doc = await call(
        payment.GetReceipt,
        pb.GetReceiptRequest(caller=d.party.caller, payment_id=pid),
        timeout_s=30,
    )
    assert doc.filename == f"receipt-{d.decision_no}.pdf" and doc.content_type == "application/pdf"
    assert doc.content.startswith(b"%PDF")


async def test_r_pay_1_decision_lookup_masks_for_others_and_prices_today(
    payment: PaymentServiceAsyncStub, payment_db: Database
) -> None:
    today = datetime.now(SHANGHAI).date()
    d = await new_decision(payment_db, fine_fen=10_000, decision_date=today - timedelta(days=17))
    own = await call(
        payment.GetDecision,
        pb.GetDecisionRequest(caller=d.party.caller, decision_no=d.decision_no),
        timeout_s=10,
    )
    other = await call(
        payment.GetDecision,
        pb.GetDecisionRequest(caller=stranger(), decision_no=d.decision_no),
        timeout_s=10,
    )
    assert (own.own, own.party_name, own.plate_number) == (True, "张伟", d.party.plate_number)
    assert (other.own, other.party_name) == (False, "张*")
    assert other.plate_number == d.party.plate_number[:2] + "***" + d.party.plate_number[-2:]
    assert (own.days_late, own.late_fee_fen, own.amount_due_fen) == (2, 600, 10_600)
    assert own.payable_here and own.authority_code == "500103" and own.state == "unpaid"
    assert (
        await code_of(
            call(
                payment.GetDecision,
                pb.GetDecisionRequest(caller=stranger(), decision_no="123"),
                timeout_s=5,
            )
        )
        == "INVALID_DECISION_NO"
    )


async def test_r_pay_9_feedback_is_filed_and_listed_with_the_provider_status(
    payment: PaymentServiceAsyncStub, payment_db: Database, test_settings: Settings
) -> None:
    d = await new_decision(payment_db)
    created = await create(payment, d.party.caller, d.decision_no, "k-feedback")
    filed = await call(
        payment.FileFeedback,
        pb.FileFeedbackRequest(
            caller=d.party.caller, payment_id=created.payment.payment_id, text=" 已扣款未销账 "
        ),
        timeout_s=10,
    )
    assert filed.feedback_id
    listed = await call(
        payment.ListFeedback, pb.ListFeedbackRequest(caller=CLERK, limit=20), timeout_s=30
    )
    (mine,) = [f for f in listed.feedback if f.feedback_id == filed.feedback_id]
    assert (mine.text, mine.payment_state, mine.provider_status) == (
        "已扣款未销账",
        "pending",
        "WAIT_BUYER_PAY",
    )
    for _ in range(test_settings.payment_feedback_max - 1):
        await call(
            payment.FileFeedback,
            pb.FileFeedbackRequest(
                caller=d.party.caller, payment_id=created.payment.payment_id, text="again"
            ),
            timeout_s=10,
        )
    assert (
        await code_of(
            call(
                payment.FileFeedback,
                pb.FileFeedbackRequest(
                    caller=d.party.caller, payment_id=created.payment.payment_id, text="more"
                ),
                timeout_s=10,
            )
        )
        == "FEEDBACK_LIMIT_REACHED"
    )
