"""Payment's nightly jobs end to end: the real payment gRPC server on PostgreSQL, the real
Alipay adapter against the session's fake Alipay (its trade bill is the statement), and the
recording SMS sender (``cqcommon.sms.recording``) on the test Redis.

- R-JOB-2: a day with a matching payment, one we hold paid that the bill lacks (ours
  only), one paid at the fake without telling us (theirs only) and one whose amount we hold
  differently (amount differs) is listed for staff by ``GetReconciliation``; running twice
  changes no row; a bill download failing half way writes nothing and the rerun completes;
  a day without a bill yet writes nothing.
- R-JOB-6: an overdue decision gets one SMS with its last 4 digits and the amount due;
  running again sends none; a send the gateway refused is retried the next run, once; the
  registry consumer keeps the phone, and a redelivered person event changes nothing.

The reconciled day is one no other test pays on (trades are paid "at" that day), so the
fake's bill of it holds this module's trades only.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis
from cqcommon.clock import SHANGHAI, SystemClock
from cqcommon.db import Database
from cqcommon.errors import DomainError
from cqcommon.events import TOPIC_REGISTRY_PERSON, new_envelope
from cqcommon.grpc_client import call
from cqcommon.inbox import ReceivedEvent
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqcommon.runner import ServiceContext
from cqcommon.settings import Settings
from cqcommon.sms.recording import RecordingSmsSender
from cqdev.fake_alipay import BILL_DOWNLOAD, FakeAlipay
from cqdev.stack import free_port
from cqdev.testing import fetch_rows
from cqpayment.adapters.postgres_copy import PostgresDecisionCopy
from cqpayment.domain.decisions import ViolationFacts
from cqpayment.entrypoints.consumers import registry_handlers
from cqpayment.service_layer.learning import learn_recorded
from cqtraffic.common.v1 import jobs_pb2
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.payment.v1 import payment_pb2 as pb
from cqtraffic.registry.v1 import registry_pb2 as reg

if TYPE_CHECKING:
    from cqtraffic.payment.v1.payment_pb2_grpc import PaymentServiceAsyncStub

    PaymentWith = Callable[..., AbstractAsyncContextManager[PaymentServiceAsyncStub]]

pytestmark = pytest.mark.integration

CLERK = common.Caller(staff_id="clerk01", staff_role="clerk")
#: the reconciled day: nobody else's trade is paid on it
DAY = date(2020, 2, 20)
NIGHT = DAY + timedelta(days=1)
AT_NIGHT = datetime.combine(NIGHT, time(22, 30), tzinfo=SHANGHAI)


async def new_decision(
    db: Database, *, decision_date: date, phone: str | None = None
) -> tuple[str, common.Caller]:
    """A person (with ``phone``), their car and a decision, written by the consumers' code;
    the decision number and the party as a logged-in user."""
    person_id, vehicle_id, violation_id = (str(uuid.uuid4()) for _ in range(3))
    decision_no = f"500103{random.randrange(10**10):010d}"
    plate = f"渝B{random.randrange(10_000, 100_000)}"
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        copy = PostgresDecisionCopy(conn)
        await copy.upsert_person(person_id=person_id, name="王芳", phone=phone)
        await copy.upsert_vehicle(
            vehicle_id=vehicle_id, owner_person_id=person_id, plate_number=plate
        )
        await learn_recorded(
            copy,
            ViolationFacts(
                violation_id=violation_id,
                vehicle_id=vehicle_id,
                licence_id=None,
                plate_number=plate,
                violation_code="1345",
                description_zh="机动车违反禁令标志指示的",
                occurred_at=now - timedelta(days=30),
                place="重庆市渝中区解放碑",
                fine_fen=20_000,
                points=3,
            ),
            decision_no=decision_no,
            decision_date=decision_date,
            now=now,
        )
    user = common.Caller(user_id=f"2088{random.randrange(10**11, 10**12)}", person_id=person_id)
    return decision_no, user


async def create(stub: PaymentServiceAsyncStub, db: Database) -> pb.Payment:
    """An online payment of a fresh decision (pending at the fake)."""
    decision_no, user = await new_decision(db, decision_date=datetime.now(SHANGHAI).date())
    created = await call(
        stub.CreatePayment,
        pb.CreatePaymentRequest(
            caller=user, decision_no=decision_no, idempotency_key=uuid.uuid4().hex, request_hash="h"
        ),
        timeout_s=30,
    )
    return created.payment


def on_the_day(minute: int) -> datetime:
    return datetime.combine(DAY, time(10, minute), tzinfo=SHANGHAI)


async def run(
    stub: PaymentServiceAsyncStub,
    job: str,
    *,
    checkpoint: str = "",
    night: date = NIGHT,
    as_of: datetime = AT_NIGHT,
    batch_size: int = 100,
) -> jobs_pb2.RunJobResponse:
    request = jobs_pb2.RunJobRequest(
        job=job,
        checkpoint=checkpoint,
        batch_size=batch_size,
        as_of=timestamp_to_proto(as_of),
        night=date_to_proto(night),
    )
    response: jobs_pb2.RunJobResponse = await call(stub.RunJob, request, timeout_s=60)
    return response


async def run_night(stub: PaymentServiceAsyncStub, job: str, **kw: Any) -> list[Any]:
    """Batches until done, as the runner calls them (bounded)."""
    batches, checkpoint = [], ""
    for _ in range(1000):
        batch = await run(stub, job, checkpoint=checkpoint, **kw)
        batches.append(batch)
        checkpoint = batch.checkpoint
        if batch.done:
            return batches
    raise AssertionError(f"{job} never finished")


async def reconciliation(
    stub: PaymentServiceAsyncStub, day: date = DAY, caller: common.Caller = CLERK
) -> pb.GetReconciliationResponse:
    response: pb.GetReconciliationResponse = await call(
        stub.GetReconciliation,
        pb.GetReconciliationRequest(caller=caller, date=date_to_proto(day)),
        timeout_s=10,
    )
    return response


async def stored_day(settings: Settings) -> list[tuple[Any, ...]]:
    days = await fetch_rows(
        settings.database_url, "SELECT * FROM payment.reconciliation_days WHERE day = %s", DAY
    )
    mismatches = await fetch_rows(
        settings.database_url,
        "SELECT * FROM payment.reconciliation_mismatches WHERE day = %s ORDER BY out_trade_no",
        DAY,
    )
    return days + mismatches


# -- R-JOB-2 ------------------------------------------------------------------------------------
async def test_r_job_2_reconciliation_lists_every_kind_of_mismatch_and_reruns_change_nothing(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    fake_alipay: FakeAlipay,
    test_settings: Settings,
) -> None:
    # matched: paid at the fake on DAY, settled by the status read (R-PAY-4)
    matched = await create(payment, payment_db)
    fake_alipay.pay(matched.out_trade_no, at=on_the_day(1))
    # theirs only: paid at the fake, and we were never told
    theirs = await create(payment, payment_db)
    fake_alipay.pay(theirs.out_trade_no, at=on_the_day(2))
    # amount differs: paid and settled, but our row holds another amount
    differs = await create(payment, payment_db)
    fake_alipay.pay(differs.out_trade_no, at=on_the_day(3))
    # ours only: we hold it paid on DAY, the provider never saw it paid
    ours = await create(payment, payment_db)
    for p in (matched, differs):
        read = await call(
            payment.GetPayment,
            pb.GetPaymentRequest(caller=CLERK, payment_id=p.payment_id),
            timeout_s=10,
        )
        assert read.state == "succeeded"
    async with payment_db.transaction() as conn:
        await conn.execute(
            "UPDATE payments SET amount_fen = amount_fen + 100, fine_fen = fine_fen + 100"
            " WHERE payment_id = %s",
            (differs.payment_id,),
        )
        await conn.execute(
            "UPDATE payments SET state = 'succeeded', paid_at = %s WHERE payment_id = %s",
            (on_the_day(4), ours.payment_id),
        )
    assert not (await reconciliation(payment)).reconciled

    # a download failing half way (the bill URL issued, the file not served): nothing written
    fake_alipay.fail_next(BILL_DOWNLOAD)
    failed = await run(payment, "reconcile_payments")
    assert (failed.done, failed.errors, failed.checkpoint) == (True, 1, "")
    assert await stored_day(test_settings) == []
    # the runner resumes from its last checkpoint ("") and the day completes
    batch = await run(payment, "reconcile_payments", checkpoint=failed.checkpoint)
    assert (batch.done, batch.errors, batch.checkpoint) == (True, 0, DAY.isoformat())
    assert batch.message == f"{DAY}: 1 matched, 1 ours_only, 1 theirs_only, 1 amount_differs"

    day = await reconciliation(payment)
    assert day.reconciled and day.reconciled_at.ToDatetime(tzinfo=UTC) == AT_NIGHT
    assert (day.statement_lines, day.our_payments) == (3, 3)
    amount = matched.amount_fen
    assert [
        (m.kind, m.out_trade_no, m.our_amount_fen, m.their_amount_fen) for m in day.mismatches
    ] == [
        ("ours_only", ours.out_trade_no, amount, 0),
        ("theirs_only", theirs.out_trade_no, 0, amount),
        ("amount_differs", differs.out_trade_no, amount + 100, amount),
    ]
    # running twice changes nothing: the same rows, the same answer
    rows = await stored_day(test_settings)
    assert (await run(payment, "reconcile_payments")).message == batch.message
    assert await stored_day(test_settings) == rows
    # the runner resuming a finished night does not fetch the bill again
    bills = len(fake_alipay.calls_of("alipay.data.dataservice.bill.downloadurl.query"))
    resumed = await run(payment, "reconcile_payments", checkpoint=batch.checkpoint)
    assert (resumed.done, resumed.items_done) == (True, 0)
    assert len(fake_alipay.calls_of("alipay.data.dataservice.bill.downloadurl.query")) == bills
    # staff only
    with pytest.raises(DomainError) as refused:
        await reconciliation(payment, caller=common.Caller(user_id="2088000000000001"))
    assert refused.value.code == "FORBIDDEN"


async def test_r_job_2_a_day_without_a_bill_yet_writes_nothing(
    payment: PaymentServiceAsyncStub, test_settings: Settings
) -> None:
    # the night after tomorrow reconciles tomorrow: the provider has no bill of it yet
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    batch = await run(
        payment, "reconcile_payments", night=tomorrow + timedelta(days=1), as_of=datetime.now(UTC)
    )
    assert (batch.done, batch.errors, batch.items_done) == (True, 0, 0)
    assert batch.message == f"{tomorrow}: statement not available yet"
    assert not (await reconciliation(payment, tomorrow)).reconciled
    rows = await fetch_rows(
        test_settings.database_url,
        "SELECT day FROM payment.reconciliation_days WHERE day = %s",
        tomorrow,
    )
    assert rows == []


# -- R-JOB-6 ------------------------------------------------------------------------------------
@pytest.fixture
async def outbox(test_settings: Settings) -> AsyncIterator[RecordingSmsSender]:
    """The recording SMS outbox the payment server writes to (the settings' default key)."""
    client = aioredis.Redis.from_url(test_settings.redis_url)
    try:
        yield RecordingSmsSender(client)
    finally:
        await client.aclose()


def new_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


async def overdue_notice(settings: Settings, decision_no: str) -> tuple[Any, ...]:
    rows = await fetch_rows(
        settings.database_url,
        "SELECT overdue_notice, overdue_sms_id FROM payment.decisions WHERE decision_no = %s",
        decision_no,
    )
    return rows[0]


async def test_r_job_6_an_overdue_decision_gets_one_sms_and_a_second_run_sends_none(
    payment: PaymentServiceAsyncStub,
    payment_db: Database,
    outbox: RecordingSmsSender,
    test_settings: Settings,
) -> None:
    today = datetime.now(SHANGHAI).date()
    phone = new_phone()
    overdue, _ = await new_decision(
        payment_db, decision_date=today - timedelta(days=16), phone=phone
    )
    due_today, _ = await new_decision(
        payment_db, decision_date=today - timedelta(days=15), phone=phone
    )
    now = datetime.now(UTC)

    batches = await run_night(payment, "notify_overdue_decisions", as_of=now, batch_size=2)
    assert sum(b.errors for b in batches) == 0
    sent = await outbox.recent(phone, 10)
    assert [(m.template_code, dict(m.params)) for m in sent] == [
        ("SMS_000000001", {"decision": overdue[-4:], "amount": "206.00"})
    ]
    assert await overdue_notice(test_settings, overdue) == ("sms_sent", sent[0].message_id)
    assert await overdue_notice(test_settings, due_today) == (None, None)

    await run_night(payment, "notify_overdue_decisions", as_of=now)
    assert len(await outbox.recent(phone, 10)) == 1  # running twice: no second SMS
    # as_of honoured: tomorrow the decision due today is overdue too (one SMS, its own)
    await run_night(payment, "notify_overdue_decisions", as_of=now + timedelta(days=1))
    newest = (await outbox.recent(phone, 10))[0]
    assert dict(newest.params) == {"decision": due_today[-4:], "amount": "206.00"}
    assert len(await outbox.recent(phone, 10)) == 2


async def test_r_job_6_a_failed_send_is_retried_next_run_and_sent_once(
    payment: PaymentServiceAsyncStub,
    payment_with: PaymentWith,
    payment_db: Database,
    outbox: RecordingSmsSender,
    test_settings: Settings,
) -> None:
    today = datetime.now(SHANGHAI).date()
    phone = new_phone()
    decision_no, _ = await new_decision(
        payment_db, decision_date=today - timedelta(days=60), phone=phone
    )
    # a night whose SMS gateway does not answer (nothing listens on its port)
    down = {
        "sms_provider": "aliyun",
        "aliyun_sms_endpoint": f"http://127.0.0.1:{free_port()}",
        "aliyun_access_key_id": "LTAI-test",
        "aliyun_access_key_secret": "test-secret",
        "sms_timeout_s": 1.0,
    }
    async with payment_with(**down) as broken:
        night = await run_night(broken, "notify_overdue_decisions", as_of=datetime.now(UTC))
    assert sum(b.errors for b in night) >= 1
    assert await overdue_notice(test_settings, decision_no) == (None, None)  # un-claimed
    # the next night's gateway works: one SMS, late fee capped at the fine (400.00 yuan)
    await run_night(payment, "notify_overdue_decisions", as_of=datetime.now(UTC))
    await run_night(payment, "notify_overdue_decisions", as_of=datetime.now(UTC))
    sent = await outbox.recent(phone, 10)
    assert [dict(m.params) for m in sent] == [{"decision": decision_no[-4:], "amount": "400.00"}]
    assert (await overdue_notice(test_settings, decision_no))[0] == "sms_sent"


async def test_r_job_6_the_registry_consumer_keeps_the_phone_and_a_redelivery_changes_nothing(
    test_settings: Settings, payment_db: Database
) -> None:
    ctx = ServiceContext(
        test_settings, payment_db, aioredis.Redis.from_url(test_settings.redis_url), SystemClock()
    )
    person_id, phone = str(uuid.uuid4()), new_phone()
    handlers = registry_handlers(ctx)

    async def deliver(message: reg.PersonRegistered) -> None:
        envelope = new_envelope(message, aggregate_id=person_id, producer="test")
        event = ReceivedEvent(envelope, message, TOPIC_REGISTRY_PERSON, 0, 0)
        async with payment_db.transaction() as conn:
            await handlers[envelope.event_type](conn, event)

    async def row() -> list[tuple[Any, ...]]:
        return await fetch_rows(
            test_settings.database_url,
            "SELECT name, phone FROM payment.persons WHERE person_id = %s",
            person_id,
        )

    try:
        event = reg.PersonRegistered(person_id=person_id, name="赵敏", id_number="x", phone=phone)
        await deliver(event)
        assert await row() == [("赵敏", phone)]
        await deliver(event)  # redelivered
        assert await row() == [("赵敏", phone)]
        await deliver(reg.PersonRegistered(person_id=person_id, name="赵敏", id_number="x"))
        assert await row() == [("赵敏", None)]  # the registry dropped it: no SMS any more
    finally:
        await ctx.redis.aclose()
