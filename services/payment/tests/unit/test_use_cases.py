"""Payment use cases on in-memory fakes (cosmicpython): a ``FakeStore`` holding every table,
a ``FakeUnitOfWork`` per transaction (a snapshot taken on entry is restored unless
``commit()`` was called, so a refused request provably writes nothing), the
``FakeTradeProvider`` and a ``FixedClock``. No database, no network.

The fakes keep the database's promises the use cases rely on: one pending and one
succeeded payment per decision, one refund per payment, one row per notify id.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cqcommon.clock import SHANGHAI, FixedClock
from cqcommon.errors import DomainError
from cqcommon.maintenance import MaintenanceWindow
from cqcommon.sms import SmsUnavailableError
from cqcommon.unit_of_work import SnapshotUnitOfWork
from cqpayment.adapters.fake_trades import FakeTradeProvider
from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import Decision, PaymentStatus, ViolationFacts
from cqpayment.domain.events import DomainEvent, FinePaid, PaymentRefunded
from cqpayment.domain.feedback import Feedback, FeedbackEntry
from cqpayment.domain.idempotency import KeyId, KeyState, Operation, StoredKey
from cqpayment.domain.overdue import OverdueCandidate, OverdueNotice
from cqpayment.domain.payments import Channel, Payment, PaymentState
from cqpayment.domain.provider import (
    ProviderRefusedError,
    ProviderUnavailableError,
    TradeState,
)
from cqpayment.domain.receipts import Receipt
from cqpayment.domain.reconciliation import (
    Mismatch,
    MismatchKind,
    OurPayment,
    ReconciledDay,
    Reconciliation,
    day_to_reconcile,
    night_of,
)
from cqpayment.domain.refunds import Refund, RefundState
from cqpayment.service_layer.config import Deps, PaymentConfig
from cqpayment.service_layer.decisions import get_decision
from cqpayment.service_layer.feedback import file_feedback, list_feedback
from cqpayment.service_layer.jobs import run_job
from cqpayment.service_layer.learning import (
    Recorded,
    learn_disputed,
    learn_handled,
    learn_recorded,
    learn_recorded_many,
)
from cqpayment.service_layer.notifications import record_provider_notification
from cqpayment.service_layer.payments import (
    create_counter_payment,
    create_payment,
    get_payment,
)
from cqpayment.service_layer.receipts import get_receipt
from cqpayment.service_layer.reconciliation import get_reconciliation
from cqpayment.service_layer.refunds import approve_refund, list_refunds

# 2026-11-20 12:00 in Chongqing: outside the maintenance window
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
DECISION_NO = "5001031234567890"
OTHER_PROVINCE_NO = "1101051234567890"
VIOLATION_ID = "0b6f1f0e-0000-4000-8000-000000000001"
VEHICLE_ID = "0b6f1f0e-0000-4000-8000-000000000002"
PARTY = "0b6f1f0e-0000-4000-8000-0000000000a1"
ALICE = Caller(user_id="2088000000000001", person_id=PARTY)
BOB = Caller(user_id="2088000000000002", person_id="0b6f1f0e-0000-4000-8000-0000000000b2")
CLERK = Caller(staff_id="clerk01", staff_role="clerk")
SUPERVISOR = Caller(staff_id="super01", staff_role="supervisor")


# -- fakes ------------------------------------------------------------------------------
class FakeStore:
    """Every table of the payment schema, in memory."""

    def __init__(self) -> None:
        self.decisions: dict[str, Decision] = {}
        self.persons: dict[str, str] = {}
        self.vehicles: dict[str, tuple[str, str]] = {}  # id -> (owner, plate)
        self.licences: dict[str, str] = {}  # id -> holder
        self.violations: dict[str, tuple[ViolationFacts, bool]] = {}
        self.payments: dict[str, Payment] = {}
        self.keys: dict[KeyId, StoredKey] = {}
        self.notifications: dict[str, tuple[str, str]] = {}
        self.rejected: list[tuple[str, str | None]] = []
        self.refunds: dict[str, Refund] = {}
        self.feedback: dict[str, Feedback] = {}
        self.phones: dict[str, str | None] = {}  # person id -> phone (registry copy)
        #: decisions.overdue_*: decision_no -> (notice, marked at, SMS id)
        self.overdue: dict[str, tuple[OverdueNotice, datetime, str | None]] = {}
        #: reconciliation_days and their mismatches: day -> (completed at, outcome)
        self.reconciled: dict[date, tuple[datetime, Reconciliation]] = {}
        #: what reached the outbox (committed events only)
        self.outbox: list[DomainEvent] = []
        self.commits = 0
        self.transactions = 0

    TABLES = (
        "decisions",
        "persons",
        "vehicles",
        "licences",
        "violations",
        "payments",
        "keys",
        "notifications",
        "rejected",
        "refunds",
        "feedback",
        "phones",
        "overdue",
        "reconciled",
    )

    def snapshot(self) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self, name)) for name in self.TABLES}

    def restore(self, snap: Mapping[str, Any]) -> None:
        for name, value in snap.items():
            setattr(self, name, value)

    def check_payment_constraints(self) -> None:
        """The partial unique indexes: one pending and one succeeded per decision."""
        for state in (PaymentState.PENDING, PaymentState.SUCCEEDED):
            decisions = [p.decision_no for p in self.payments.values() if p.state is state]
            assert len(decisions) == len(set(decisions)), f"two {state} payments of a decision"

    def events(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.outbox if isinstance(e, kind)]


class FakeDecisions:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def get(self, decision_no: str) -> Decision | None:
        return self.s.decisions.get(decision_no)

    async def lock(self, decision_no: str) -> Decision | None:
        return self.s.decisions.get(decision_no)

    async def party_name(self, person_id: str) -> str | None:
        return self.s.persons.get(person_id)

    async def status(self, decision_no: str, now: datetime) -> PaymentStatus:
        mine = [p for p in self.s.payments.values() if p.decision_no == decision_no]
        if any(p.state is PaymentState.SUCCEEDED for p in mine):
            return PaymentStatus.PAID
        if any(p.state is PaymentState.PENDING and not p.expired(now) for p in mine):
            return PaymentStatus.IN_PROGRESS
        return PaymentStatus.UNPAID


class FakePayments:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, payment: Payment) -> None:
        assert payment.payment_id not in self.s.payments
        self.s.payments[payment.payment_id] = payment
        self.s.check_payment_constraints()

    async def get(self, payment_id: str) -> Payment | None:
        return self.s.payments.get(payment_id)

    async def get_for(self, payment_id: str, caller: Caller) -> Payment | None:
        payment = self.s.payments.get(payment_id)
        return payment if payment is not None and payment.visible_to(caller) else None

    async def lock(self, payment_id: str) -> Payment | None:
        return self.s.payments.get(payment_id)

    async def by_out_trade_no(self, out_trade_no: str) -> Payment | None:
        return next((p for p in self.s.payments.values() if p.out_trade_no == out_trade_no), None)

    def _of(self, decision_no: str, state: PaymentState) -> Payment | None:
        return next(
            (
                p
                for p in self.s.payments.values()
                if p.decision_no == decision_no and p.state is state
            ),
            None,
        )

    async def pending_of(self, decision_no: str) -> Payment | None:
        return self._of(decision_no, PaymentState.PENDING)

    async def succeeded_of(self, decision_no: str) -> Payment | None:
        return self._of(decision_no, PaymentState.SUCCEEDED)

    async def save(self, payment: Payment, *, now: datetime) -> None:
        assert payment.payment_id in self.s.payments
        self.s.payments[payment.payment_id] = payment
        self.s.check_payment_constraints()

    async def pending_page(
        self, *, created_before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[Payment]:
        rows = sorted(
            (
                p
                for p in self.s.payments.values()
                if p.state is PaymentState.PENDING and p.created_at < created_before
            ),
            key=lambda p: (p.created_at, p.payment_id),
        )
        if after is not None:
            rows = [p for p in rows if (p.created_at, p.payment_id) > after]
        return rows[:limit]


class FakeKeys:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def claim(self, key: KeyId, *, request_hash: str, now: datetime) -> StoredKey | None:
        if key in self.s.keys:
            return self.s.keys[key]
        self.s.keys[key] = StoredKey(
            id=key,
            request_hash=request_hash,
            state=KeyState.IN_FLIGHT,
            payment_id=None,
            response=None,
            locked_at=now,
            created_at=now,
            completed_at=None,
        )
        return None

    def _set(self, key: KeyId, **changes: Any) -> None:
        self.s.keys[key] = dataclasses.replace(self.s.keys[key], **changes)

    async def lock_again(self, key: KeyId, *, now: datetime) -> None:
        self._set(key, locked_at=now)

    async def attach(self, key: KeyId, payment_id: str) -> None:
        self._set(key, payment_id=payment_id)

    async def complete(self, key: KeyId, *, response: bytes, now: datetime) -> None:
        self._set(key, state=KeyState.COMPLETED, response=response, completed_at=now)

    async def unlock(self, key: KeyId) -> None:
        self._set(key, locked_at=None)

    async def release(self, key: KeyId) -> None:
        self.s.keys.pop(key, None)

    async def reap(self, *, older_than: datetime, limit: int) -> int:
        old = [
            k
            for k, v in self.s.keys.items()
            if (v.state is KeyState.COMPLETED and v.completed_at and v.completed_at < older_than)
            or (v.state is KeyState.IN_FLIGHT and v.created_at < older_than)
        ][:limit]
        for k in old:
            del self.s.keys[k]
        return len(old)


class FakeNotifications:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add_accepted(
        self, *, notify_id: str, out_trade_no: str, trade_state: str, now: datetime
    ) -> bool:
        if notify_id in self.s.notifications:
            return False
        self.s.notifications[notify_id] = (out_trade_no, trade_state)
        return True

    async def add_rejected(self, *, reason: str, out_trade_no: str | None, now: datetime) -> None:
        self.s.rejected.append((reason, out_trade_no))


class FakeRefunds:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, refund: Refund) -> None:
        assert all(r.payment_id != refund.payment_id for r in self.s.refunds.values())
        self.s.refunds[refund.refund_id] = refund

    async def get(self, refund_id: str) -> Refund | None:
        return self.s.refunds.get(refund_id)

    async def lock(self, refund_id: str) -> Refund | None:
        return self.s.refunds.get(refund_id)

    async def save(self, refund: Refund) -> None:
        self.s.refunds[refund.refund_id] = refund

    async def list(self, *, state: str | None, limit: int) -> list[Refund]:
        rows = [r for r in self.s.refunds.values() if state is None or r.state == state]
        return sorted(rows, key=lambda r: r.created_at)[:limit]


class FakeFeedback:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, feedback: Feedback) -> None:
        self.s.feedback[feedback.feedback_id] = feedback

    async def count_for(self, payment_id: str) -> int:
        return sum(1 for f in self.s.feedback.values() if f.payment_id == payment_id)

    async def newest(self, *, limit: int) -> list[FeedbackEntry]:
        rows = sorted(
            self.s.feedback.values(), key=lambda f: (f.created_at, f.feedback_id), reverse=True
        )
        out = []
        for f in rows[:limit]:
            p = self.s.payments[f.payment_id]
            out.append(
                FeedbackEntry(f, p.decision_no, p.state.value, p.out_trade_no, p.channel.value)
            )
        return out


class FakeReconciliation:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def our_payments(
        self, *, paid_from: datetime, paid_until: datetime, out_trade_nos: Sequence[str]
    ) -> list[OurPayment]:
        wanted = set(out_trade_nos)
        return [
            OurPayment(p.out_trade_no, p.state, p.amount_fen, p.paid_at)
            for p in self.s.payments.values()
            if p.channel is Channel.ALIPAY
            and (
                p.out_trade_no in wanted
                or (
                    p.state
                    in (PaymentState.SUCCEEDED, PaymentState.DUPLICATE, PaymentState.REFUNDED)
                    and p.paid_at is not None
                    and paid_from <= p.paid_at < paid_until
                )
            )
        ]

    async def replace_day(self, result: Reconciliation, *, completed_at: datetime) -> None:
        self.s.reconciled[result.day] = (completed_at, result)

    async def day(self, day: date) -> ReconciledDay | None:
        if day not in self.s.reconciled:
            return None
        at, r = self.s.reconciled[day]
        return ReconciledDay(day, at, r.statement_lines, r.our_payments, r.mismatches)


class FakeOverdue:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def candidates(
        self, *, dated_until: date, after: tuple[date, str] | None, limit: int
    ) -> list[OverdueCandidate]:
        rows = sorted(
            (
                d
                for d in self.s.decisions.values()
                if d.decision_no not in self.s.overdue and d.decision_date <= dated_until
            ),
            key=lambda d: (d.decision_date, d.decision_no),
        )
        if after is not None:
            rows = [d for d in rows if (d.decision_date, d.decision_no) > after]
        return [
            OverdueCandidate(
                decision_no=d.decision_no,
                decision_date=d.decision_date,
                fine_fen=d.fine_fen,
                paid=any(
                    p.decision_no == d.decision_no and p.state is PaymentState.SUCCEEDED
                    for p in self.s.payments.values()
                ),
                disputed=d.disputed,
                party_known=d.party_person_id is not None,
                phone=self.s.phones.get(d.party_person_id or ""),
            )
            for d in rows[:limit]
        ]

    async def mark(self, decision_no: str, notice: OverdueNotice, *, now: datetime) -> None:
        self.s.overdue.setdefault(decision_no, (notice, now, None))

    async def sent(self, decision_no: str, *, sms_id: str, now: datetime) -> None:
        notice, at, _ = self.s.overdue[decision_no]
        assert notice is OverdueNotice.CLAIMED
        self.s.overdue[decision_no] = (OverdueNotice.SMS_SENT, at, sms_id)

    async def unclaim(self, decision_no: str) -> None:
        if self.s.overdue.get(decision_no, (None,))[0] is OverdueNotice.CLAIMED:
            del self.s.overdue[decision_no]


class FakeSms:
    """``SmsSender`` that keeps what it sends; ``fail`` next sends raise SmsUnavailableError."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []
        self.fail = 0

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        if self.fail:
            self.fail -= 1
            raise SmsUnavailableError("isv.BUSINESS_LIMIT_CONTROL")
        self.sent.append((phone, template_code, dict(params)))
        return f"sms-{len(self.sent)}"


class FakeUnitOfWork(SnapshotUnitOfWork[DomainEvent]):
    """One transaction on the store: rolled back (snapshot restored) unless committed."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store)
        self.store: FakeStore = store
        self.decisions = FakeDecisions(store)
        self.payments = FakePayments(store)
        self.keys = FakeKeys(store)
        self.notifications = FakeNotifications(store)
        self.refunds = FakeRefunds(store)
        self.feedback = FakeFeedback(store)
        self.reconciliation = FakeReconciliation(store)
        self.overdue = FakeOverdue(store)

    async def __aenter__(self) -> FakeUnitOfWork:
        self.store.transactions += 1  # counted: a use case's number of transactions
        return await super().__aenter__()


class FakeCopy:
    """The consumers' registry/decision copy on the same store."""

    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def upsert_person(self, *, person_id: str, name: str, phone: str | None = None) -> None:
        self.s.persons[person_id] = name
        self.s.phones[person_id] = phone

    async def upsert_vehicle(
        self, *, vehicle_id: str, owner_person_id: str, plate_number: str
    ) -> None:
        self.s.vehicles[vehicle_id] = (owner_person_id, plate_number)

    async def upsert_licence(self, *, licence_id: str, person_id: str) -> None:
        self.s.licences[licence_id] = person_id

    async def licence_holder(self, licence_id: str) -> str | None:
        return self.s.licences.get(licence_id)

    async def vehicle_owner(self, vehicle_id: str) -> str | None:
        v = self.s.vehicles.get(vehicle_id)
        return v[0] if v else None

    async def upsert_violations(self, facts: Sequence[ViolationFacts], *, now: datetime) -> None:
        for f in facts:
            disputed = self.s.violations.get(f.violation_id, (f, False))[1]
            self.s.violations[f.violation_id] = (f, disputed)

    async def violation(self, violation_id: str) -> tuple[ViolationFacts, bool] | None:
        return self.s.violations.get(violation_id)

    async def upsert_decision(self, decision: Decision, *, now: datetime) -> None:
        self.s.decisions.setdefault(decision.decision_no, decision)

    async def set_disputed(self, violation_id: str, disputed: bool, *, now: datetime) -> None:
        if violation_id in self.s.violations:
            facts, _ = self.s.violations[violation_id]
            self.s.violations[violation_id] = (facts, disputed)
        for no, d in self.s.decisions.items():
            if d.violation_id == violation_id:
                self.s.decisions[no] = dataclasses.replace(d, disputed=disputed)


class FakeRenderer:
    def __init__(self) -> None:
        self.rendered: list[Receipt] = []

    def render(self, receipt: Receipt) -> bytes:
        self.rendered.append(receipt)
        return b"%PDF-fake " + receipt.decision_no.encode()


def encode(payment: Payment) -> bytes:
    """A stand-in for the protobuf encoding: deterministic bytes of the payment."""
    return json.dumps(
        {
            "payment_id": payment.payment_id,
            "state": payment.state.value,
            "amount_fen": payment.amount_fen,
            "out_trade_no": payment.out_trade_no,
            "provider_trade_no": payment.provider_trade_no,
        },
        sort_keys=True,
    ).encode()


def decoded(response: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(response)
    return value


class World:
    """A store, a clock, a provider and the use cases' dependencies on them."""

    def __init__(self, *, now: datetime = NOW, window: MaintenanceWindow | None = None) -> None:
        self.store = FakeStore()
        self.clock = FixedClock(now)
        self.provider = FakeTradeProvider(clock=self.clock)
        self.sms = FakeSms()
        counter = iter(range(1, 10**6))
        self.deps = Deps(
            uows=lambda: FakeUnitOfWork(self.store),
            provider=self.provider,
            clock=self.clock,
            config=PaymentConfig(window=window, lock_timeout=timedelta(seconds=30)),
            new_id=lambda: f"0b6f1f0e-0000-4000-9000-{next(counter):012d}",
            sms=self.sms,
        )

    def add_decision(
        self,
        decision_no: str = DECISION_NO,
        *,
        decision_date: date = date(2026, 11, 1),
        fine_fen: int = 20_000,
        disputed: bool = False,
        violation_id: str = VIOLATION_ID,
    ) -> Decision:
        decision = Decision(
            decision_no=decision_no,
            violation_id=violation_id,
            decision_date=decision_date,
            fine_fen=fine_fen,
            points=3,
            party_person_id=PARTY,
            vehicle_id=VEHICLE_ID,
            licence_id=None,
            plate_number="渝A12345",
            violation_code="1345",
            description_zh="机动车违反禁令标志指示的",
            occurred_at=datetime(2026, 10, 30, 1, 0, tzinfo=UTC),
            place="重庆市渝中区解放碑",
            disputed=disputed,
            learned_from="handled",
        )
        self.store.decisions[decision_no] = decision
        self.store.persons[PARTY] = "张伟"
        return decision

    async def create(
        self,
        caller: Caller = ALICE,
        key: str = "key-1",
        *,
        decision_no: str = DECISION_NO,
        request_hash: str = "h1",
    ) -> dict[str, Any]:
        result = await create_payment(
            self.deps,
            encode=encode,
            caller=caller,
            decision_no=decision_no,
            idempotency_key=key,
            request_hash=request_hash,
        )
        return decoded(result.response) | {"replayed": result.replayed}

    async def counter(
        self, key: str = "desk-1", *, method: str = "cash", decision_no: str = DECISION_NO
    ) -> dict[str, Any]:
        result = await create_counter_payment(
            self.deps,
            encode=encode,
            caller=CLERK,
            decision_no=decision_no,
            method=method,
            idempotency_key=key,
            request_hash="counter",
        )
        return decoded(result.response) | {"replayed": result.replayed}

    async def notify(self, out_trade_no: str, /, **overrides: str) -> tuple[bool, str]:
        params = self.provider.notification(out_trade_no, overrides=overrides)
        result = await record_provider_notification(self.deps, params=params)
        return result.accepted, result.rejected_reason

    def payment(self, payment_id: str) -> Payment:
        return self.store.payments[payment_id]


async def raises(code: str, awaitable: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        await awaitable
    assert info.value.code == code, info.value
    return info.value


@pytest.fixture
def world() -> World:
    w = World()
    w.add_decision()
    return w


# -- GetDecision (R-PAY-1/2, R-Q-4) ------------------------------------------------------
async def test_r_pay_1_decision_number_is_validated_before_lookup(world: World) -> None:
    await raises("INVALID_DECISION_NO", get_decision(world.deps, caller=ALICE, decision_no="12"))
    await raises(
        "DECISION_NOT_FOUND",
        get_decision(world.deps, caller=ALICE, decision_no="5001039999999999"),
    )


async def test_r_pay_2_decision_priced_for_today_in_shanghai(world: World) -> None:
    # decided 1 Nov, due 16 Nov; at 12:00 on 20 Nov four days late: 4 x 3 % of 200 yuan
    view = await get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)
    assert (view.amount.days_late, view.amount.late_fee_fen, view.amount.total_fen) == (
        4,
        2_400,
        22_400,
    )
    assert view.status is PaymentStatus.UNPAID
    # 23:59:59 local on 20 Nov is still the same day; 00:00 on 21 Nov is one more day
    world.clock.at = datetime(2026, 11, 20, 23, 59, 59, tzinfo=SHANGHAI)
    assert (
        await get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)
    ).amount.days_late == 4
    world.clock.at = datetime(2026, 11, 21, 0, 0, tzinfo=SHANGHAI)
    assert (
        await get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)
    ).amount.days_late == 5


async def test_r_q_4_another_person_sees_the_party_masked(world: World) -> None:
    own = await get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)
    other = await get_decision(world.deps, caller=BOB, decision_no=DECISION_NO)
    staff = await get_decision(world.deps, caller=CLERK, decision_no=DECISION_NO)
    assert (own.own, own.party_name, own.plate_number) == (True, "张伟", "渝A12345")
    assert (other.own, other.party_name, other.plate_number) == (False, "张*", "渝A***45")
    assert (staff.own, staff.party_name) == (True, "张伟")


async def test_r_pay_1_a_decision_whose_party_is_not_known_yet_is_not_found_yet(
    world: World,
) -> None:
    """The registry copy trails the decision (other topics): neither shown masked to its
    own party nor paid (a counter payment would not know whose it is) until it arrives."""
    decision = world.store.decisions[DECISION_NO]
    world.store.decisions[DECISION_NO] = dataclasses.replace(decision, party_person_id=None)
    await raises(
        "DECISION_NOT_FOUND", get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)
    )
    await raises("DECISION_NOT_FOUND", world.create())
    await raises("DECISION_NOT_FOUND", world.counter())
    world.store.decisions[DECISION_NO] = decision
    del world.store.persons[PARTY]  # the person's own record trails too
    await raises(
        "DECISION_NOT_FOUND", get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)
    )
    world.store.persons[PARTY] = "张伟"
    assert (await get_decision(world.deps, caller=ALICE, decision_no=DECISION_NO)).own


async def test_r_pay_1_other_province_is_shown_but_not_payable_here(world: World) -> None:
    world.add_decision(OTHER_PROVINCE_NO, violation_id="0b6f1f0e-0000-4000-8000-0000000000ff")
    view = await get_decision(world.deps, caller=ALICE, decision_no=OTHER_PROVINCE_NO)
    assert not view.decision.payable_here
    assert view.not_payable_code == "DECISION_NOT_PAYABLE_HERE"
    assert view.decision.authority_code == "110105"
    await raises("DECISION_NOT_PAYABLE_HERE", world.create(decision_no=OTHER_PROVINCE_NO))


# -- CreatePayment (R-PAY-3, R-PAY-6) ---------------------------------------------------
async def test_r_pay_3_create_makes_one_pending_payment_with_a_trade(world: World) -> None:
    first = await world.create()
    payment = world.payment(first["payment_id"])
    assert payment.state is PaymentState.PENDING
    assert payment.amount_fen == 22_400 and (payment.fine_fen, payment.late_fee_fen) == (
        20_000,
        2_400,
    )
    assert payment.provider_trade_no == first["provider_trade_no"] is not None
    # the trade closes at the next Asia/Shanghai midnight
    assert payment.expires_at == datetime(2026, 11, 21, tzinfo=SHANGHAI)
    assert world.provider.trades[payment.out_trade_no].expires_at == payment.expires_at
    assert payment.out_trade_no.startswith("20261120") and len(payment.out_trade_no) == 32
    assert world.provider.created == 1
    assert first["replayed"] is False


async def test_r_pay_3_same_key_same_request_replays_byte_for_byte(world: World) -> None:
    first = await create_payment(
        world.deps,
        encode=encode,
        caller=ALICE,
        decision_no=DECISION_NO,
        idempotency_key="k",
        request_hash="h",
    )
    # the payment moves on (paid); the replay still answers the first response
    world.provider.pay(world.store.payments[decoded(first.response)["payment_id"]].out_trade_no)
    again = await create_payment(
        world.deps,
        encode=encode,
        caller=ALICE,
        decision_no=DECISION_NO,
        idempotency_key="k",
        request_hash="h",
    )
    assert again.response == first.response and again.replayed
    assert world.provider.calls["create_trade"] == 1


async def test_r_pay_3_same_key_other_request_is_422(world: World) -> None:
    await world.create(key="k", request_hash="h1")
    await raises("IDEMPOTENCY_KEY_REUSED", world.create(key="k", request_hash="h2"))


async def test_r_pay_3_same_key_in_flight_is_409_then_taken_over_when_stale(world: World) -> None:
    key = KeyId("user:" + ALICE.user_id, Operation.CREATE_PAYMENT, "k")
    world.store.keys[key] = StoredKey(
        id=key,
        request_hash="h",
        state=KeyState.IN_FLIGHT,
        payment_id=None,
        response=None,
        locked_at=NOW - timedelta(seconds=5),
        created_at=NOW - timedelta(seconds=5),
        completed_at=None,
    )
    await raises("IDEMPOTENCY_KEY_IN_USE", world.create(key="k", request_hash="h"))
    world.clock.advance(timedelta(seconds=30))  # the first attempt crashed: lock is stale
    taken = await world.create(key="k", request_hash="h")
    assert world.payment(taken["payment_id"]).state is PaymentState.PENDING


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", "IDEMPOTENCY_KEY_REQUIRED"),
        ("with space", "IDEMPOTENCY_KEY_INVALID"),
        ("x" * 256, "IDEMPOTENCY_KEY_INVALID"),
        ("密钥", "IDEMPOTENCY_KEY_INVALID"),
    ],
)
async def test_r_pay_3_key_must_be_1_to_255_visible_ascii(
    world: World, key: str, code: str
) -> None:
    await raises(code, world.create(key=key))
    assert world.store.keys == {} and world.store.payments == {}


async def test_r_pay_3_refused_request_releases_its_key(world: World) -> None:
    await raises("DECISION_NOT_FOUND", world.create(key="k", decision_no="5001039999999999"))
    assert world.store.keys == {}
    # the client may send the same request again (it is answered, not 409/422)
    await raises("DECISION_NOT_FOUND", world.create(key="k", decision_no="5001039999999999"))


async def test_r_pay_3_same_payer_again_gets_the_same_trade(world: World) -> None:
    first = await world.create(key="a")
    second = await world.create(key="b")
    assert second["payment_id"] == first["payment_id"]
    assert world.provider.created == 1
    assert len(world.store.payments) == 1


async def test_r_pay_3_another_payer_while_in_progress_is_refused(world: World) -> None:
    await world.create(ALICE, key="a")
    await raises("PAYMENT_IN_PROGRESS", world.create(BOB, key="b"))
    assert len(world.store.payments) == 1
    assert KeyId("user:" + BOB.user_id, Operation.CREATE_PAYMENT, "b") not in world.store.keys


async def test_r_pay_3_paid_decision_is_refused(world: World) -> None:
    first = await world.create()
    world.provider.pay(world.payment(first["payment_id"]).out_trade_no)
    await world.notify(world.payment(first["payment_id"]).out_trade_no)
    await raises("ALREADY_PAID", world.create(BOB, key="b"))


async def test_r_adj_9_disputed_decision_is_not_payable(world: World) -> None:
    world.add_decision(disputed=True)
    await raises("DECISION_DISPUTED", world.create())
    await raises("DECISION_DISPUTED", world.counter())


async def test_r_pay_2_expired_pending_is_settled_then_a_new_amount_is_charged(
    world: World,
) -> None:
    """A payment started at 23:59 cannot be paid at the old amount the next day: its trade
    closes at midnight, and the next create settles it and charges today's amount."""
    world.clock.at = datetime(2026, 11, 20, 23, 59, tzinfo=SHANGHAI)
    old = await world.create(key="late")
    world.clock.at = datetime(2026, 11, 21, 0, 31, tzinfo=SHANGHAI)
    with pytest.raises(ValueError, match="cannot be paid"):
        world.provider.pay(world.payment(old["payment_id"]).out_trade_no)
    new = await world.create(BOB, key="next-day")
    assert world.payment(old["payment_id"]).state is PaymentState.FAILED
    assert world.payment(old["payment_id"]).failure_reason == "closed"
    assert world.payment(new["payment_id"]).amount_fen == 22_400 + 600  # one more day late


async def test_r_pay_3_expired_pending_paid_at_the_provider_is_settled_not_charged_again(
    world: World,
) -> None:
    old = await world.create(key="a")
    world.provider.pay(world.payment(old["payment_id"]).out_trade_no)  # notification lost
    world.clock.at = datetime(2026, 11, 21, 1, 0, tzinfo=SHANGHAI)
    await raises("ALREADY_PAID", world.create(BOB, key="b"))
    assert world.payment(old["payment_id"]).state is PaymentState.SUCCEEDED
    assert len(world.store.events(FinePaid)) == 1
    assert world.provider.created == 1


async def test_r_pay_3_provider_refusal_fails_the_payment_and_releases_the_key(
    world: World,
) -> None:
    world.provider.fail_next("create_trade", ProviderRefusedError("ACQ.INVALID_PARAMETER"))
    error = await raises("PAYMENT_PROVIDER_REFUSED", world.create(key="k"))
    assert error.details == {"provider_code": "ACQ.INVALID_PARAMETER"}
    (payment,) = world.store.payments.values()
    assert (payment.state, payment.failure_reason) == (PaymentState.FAILED, "provider_refused")
    assert world.store.keys == {}
    retried = await world.create(key="k")  # a retry is a fresh request: a new payment
    assert retried["payment_id"] != payment.payment_id


async def test_r_pay_3_provider_down_keeps_payment_pending_and_retry_reuses_it(
    world: World,
) -> None:
    world.provider.fail_next("create_trade", ProviderUnavailableError("timeout"))
    await raises("ALIPAY_UNAVAILABLE", world.create(key="k"))
    (payment,) = world.store.payments.values()
    assert payment.state is PaymentState.PENDING and payment.provider_trade_no is None
    (stored,) = world.store.keys.values()
    assert stored.locked_at is None and stored.payment_id == payment.payment_id
    retried = await world.create(key="k")  # takes over at once, same order number
    assert retried["payment_id"] == payment.payment_id
    assert world.provider.created == 1


async def test_r_pay_6_window_refuses_new_payments_with_retry_after() -> None:
    w = World(now=datetime(2026, 11, 20, 22, 0, tzinfo=SHANGHAI), window=MaintenanceWindow())
    w.add_decision()
    error = await raises("MAINTENANCE_WINDOW", w.create())
    assert error.details == {
        "retry_after_s": 9_000,
        "resumes_at": "2026-11-21T00:30:00+08:00",
    }
    await raises("MAINTENANCE_WINDOW", w.counter())
    assert w.store.keys == {} and w.store.payments == {}
    w.clock.at = datetime(2026, 11, 21, 0, 30, tzinfo=SHANGHAI)
    assert (await w.create())["payment_id"]


async def test_r_pay_6_notifications_are_accepted_inside_the_window() -> None:
    w = World(window=MaintenanceWindow())
    w.add_decision()
    created = await w.create()
    out = w.payment(created["payment_id"]).out_trade_no
    w.clock.at = datetime(2026, 11, 20, 23, 0, tzinfo=SHANGHAI)
    w.provider.pay(out)
    assert await w.notify(out) == (True, "")
    assert w.payment(created["payment_id"]).state is PaymentState.SUCCEEDED


# -- notifications (R-PAY-7) ------------------------------------------------------------
async def test_r_pay_7_replayed_notification_changes_state_once(world: World) -> None:
    created = await world.create()
    out = world.payment(created["payment_id"]).out_trade_no
    world.provider.pay(out)
    params = world.provider.notification(out, notify_id="n-1")
    for _ in range(15):
        result = await record_provider_notification(world.deps, params=params)
        assert result.accepted
    assert world.payment(created["payment_id"]).state is PaymentState.SUCCEEDED
    (paid,) = world.store.events(FinePaid)
    assert paid.payment.amount_fen == 22_400
    # another notify id for the same paid trade changes nothing either
    assert await world.notify(out) == (True, "")
    assert len(world.store.events(FinePaid)) == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sign": "forged"}, "bad_signature"),
        ({"total_amount": "not-money"}, "malformed"),
        ({"app_id": "2021999999999999"}, "app_id_mismatch"),
        ({"seller_id": "2088111111111111"}, "seller_id_mismatch"),
        ({"total_amount": "0.01"}, "amount_mismatch"),
        ({"out_trade_no": "20261120" + "f" * 24}, "unknown_trade"),
    ],
)
async def test_r_pay_7_bad_notifications_are_rejected_and_counted(
    world: World, overrides: dict[str, str], reason: str
) -> None:
    created = await world.create()
    out = world.payment(created["payment_id"]).out_trade_no
    world.provider.pay(out)
    assert await world.notify(out, **overrides) == (False, reason)
    assert world.payment(created["payment_id"]).state is PaymentState.PENDING
    assert world.store.rejected == [(reason, overrides.get("out_trade_no", out))]
    assert world.store.outbox == [] and world.store.notifications == {}


async def test_r_pay_7_closed_notification_fails_pending_never_a_paid_one(world: World) -> None:
    created = await world.create()
    out = world.payment(created["payment_id"]).out_trade_no
    world.provider.pay(out)
    await world.notify(out)
    # out of order: a TRADE_CLOSED after TRADE_SUCCESS changes nothing
    await world.notify(out, trade_status="TRADE_CLOSED")
    assert world.payment(created["payment_id"]).state is PaymentState.SUCCEEDED


async def test_r_pay_4_money_is_the_truth_a_failed_payment_reported_paid_is_settled(
    world: World,
) -> None:
    created = await world.create()
    payment = world.payment(created["payment_id"])
    world.store.payments[payment.payment_id] = dataclasses.replace(
        payment, state=PaymentState.FAILED, failure_reason="closed"
    )
    world.provider.pay(payment.out_trade_no)
    await world.notify(payment.out_trade_no)
    assert world.payment(payment.payment_id).state is PaymentState.SUCCEEDED


# -- GetPayment (R-PAY-4) ---------------------------------------------------------------
async def test_r_pay_4_reading_a_pending_payment_heals_a_lost_notification(world: World) -> None:
    created = await world.create()
    world.provider.pay(world.payment(created["payment_id"]).out_trade_no)  # crash: no notify
    seen = await get_payment(world.deps, caller=ALICE, payment_id=created["payment_id"])
    assert seen.state is PaymentState.SUCCEEDED and seen.paid_at is not None
    assert len(world.store.events(FinePaid)) == 1
    assert world.provider.calls["create_trade"] == 1  # never a second charge


async def test_r_pay_4_provider_down_shows_pending_as_is(world: World) -> None:
    created = await world.create()
    world.provider.fail_next("query_trade", ProviderUnavailableError("timeout"))
    seen = await get_payment(world.deps, caller=ALICE, payment_id=created["payment_id"])
    assert seen.state is PaymentState.PENDING


async def test_r_pay_4_unknown_trade_past_expiry_fails_expired(world: World) -> None:
    world.provider.fail_next("create_trade", ProviderUnavailableError("timeout"))
    await raises("ALIPAY_UNAVAILABLE", world.create())
    (payment,) = world.store.payments.values()
    world.clock.at = datetime(2026, 11, 21, 1, 0, tzinfo=SHANGHAI)
    seen = await get_payment(world.deps, caller=ALICE, payment_id=payment.payment_id)
    assert (seen.state, seen.failure_reason) == (PaymentState.FAILED, "expired")
    assert world.provider.calls["create_trade"] == 1


async def test_r_pay_4_another_users_payment_answers_like_an_unknown_one(world: World) -> None:
    created = await world.create()
    before = world.store.transactions
    await raises(
        "PAYMENT_NOT_FOUND", get_payment(world.deps, caller=BOB, payment_id=created["payment_id"])
    )
    foreign = world.store.transactions - before
    before = world.store.transactions
    await raises(
        "PAYMENT_NOT_FOUND",
        get_payment(world.deps, caller=BOB, payment_id="0b6f1f0e-0000-4000-8000-00000000dead"),
    )
    assert world.store.transactions - before == foreign == 1


# -- counter payments and duplicates (R-PAY-5) -------------------------------------------
async def test_counter_payment_succeeds_at_once_with_fine_paid(world: World) -> None:
    paid = await world.counter(method="card")
    payment = world.payment(paid["payment_id"])
    assert (payment.state, payment.channel) == (PaymentState.SUCCEEDED, Channel.COUNTER_CARD)
    assert payment.payer_person_id == PARTY and payment.staff_id == "clerk01"
    assert [e.payment.payment_id for e in world.store.events(FinePaid)] == [payment.payment_id]
    again = await world.counter(method="card")
    assert again["replayed"] and again["payment_id"] == paid["payment_id"]
    await raises("INVALID_PAYMENT_METHOD", world.counter("desk-2", method="cheque"))
    await raises(
        "FORBIDDEN",
        create_counter_payment(
            world.deps,
            encode=encode,
            caller=ALICE,
            decision_no=DECISION_NO,
            method="cash",
            idempotency_key="x",
            request_hash="x",
        ),
    )


async def test_r_pay_5_counter_closes_a_pending_online_trade_first(world: World) -> None:
    online = await world.create()
    paid = await world.counter()
    assert world.payment(online["payment_id"]).state is PaymentState.FAILED
    assert world.payment(paid["payment_id"]).state is PaymentState.SUCCEEDED
    out = world.payment(online["payment_id"]).out_trade_no
    assert world.provider.trades[out].state is TradeState.TRADE_CLOSED


async def test_r_pay_5_counter_takes_no_cash_when_the_online_trade_was_paid(world: World) -> None:
    online = await world.create()
    world.provider.pay(world.payment(online["payment_id"]).out_trade_no)
    await raises("ALREADY_PAID", world.counter())
    assert world.payment(online["payment_id"]).state is PaymentState.SUCCEEDED
    assert len(world.store.payments) == 1 and world.store.keys.keys() == {
        KeyId("user:" + ALICE.user_id, Operation.CREATE_PAYMENT, "key-1")
    }


async def test_r_pay_5_online_success_after_counter_is_a_duplicate_refunded_on_approval(
    world: World,
) -> None:
    online = await world.create()
    world.provider.fail_next("close_trade", ProviderUnavailableError("timeout"))
    cash = await world.counter()  # close failed: cash taken anyway
    out = world.payment(online["payment_id"]).out_trade_no
    world.provider.pay(out)
    await world.notify(out)
    dup = world.payment(online["payment_id"])
    assert dup.state is PaymentState.DUPLICATE
    assert world.payment(cash["payment_id"]).state is PaymentState.SUCCEEDED
    assert [e.payment.payment_id for e in world.store.events(FinePaid)] == [cash["payment_id"]]
    (refund,) = await list_refunds(world.deps, caller=CLERK, status="pending_approval")
    assert (refund.payment_id, refund.amount_fen, refund.reason) == (
        dup.payment_id,
        dup.amount_fen,
        "duplicate",
    )
    await raises(
        "SUPERVISOR_REQUIRED", approve_refund(world.deps, caller=CLERK, refund_id=refund.refund_id)
    )
    # the provider is down: approved, retried later with the same out_request_no
    world.provider.fail_next("refund", ProviderUnavailableError("timeout"))
    await raises(
        "ALIPAY_UNAVAILABLE",
        approve_refund(world.deps, caller=SUPERVISOR, refund_id=refund.refund_id),
    )
    assert world.store.refunds[refund.refund_id].state is RefundState.APPROVED
    done = await approve_refund(world.deps, caller=SUPERVISOR, refund_id=refund.refund_id)
    assert (done.state, done.approved_by) == (RefundState.REFUNDED, "super01")
    assert world.payment(dup.payment_id).state is PaymentState.REFUNDED
    assert world.provider.trades[out].refund_requests == {refund.out_request_no: dup.amount_fen}
    (event,) = world.store.events(PaymentRefunded)
    assert event.refund.refund_id == refund.refund_id
    await raises(
        "REFUND_NOT_PENDING",
        approve_refund(world.deps, caller=SUPERVISOR, refund_id=refund.refund_id),
    )
    await raises(
        "REFUND_NOT_FOUND", approve_refund(world.deps, caller=SUPERVISOR, refund_id="nope")
    )
    await raises("VALIDATION_FAILED", list_refunds(world.deps, caller=CLERK, status="bogus"))


# -- receipts and feedback (R-PAY-8, R-PAY-9) -------------------------------------------
async def test_r_pay_8_receipt_of_a_paid_payment_masked_for_another_payer(world: World) -> None:
    renderer = FakeRenderer()
    created = await world.create(BOB)
    out = world.payment(created["payment_id"]).out_trade_no
    await raises(
        "RECEIPT_NOT_AVAILABLE",
        get_receipt(world.deps, renderer=renderer, caller=BOB, payment_id=created["payment_id"]),
    )
    world.provider.pay(out)
    await world.notify(out)
    doc = await get_receipt(
        world.deps, renderer=renderer, caller=BOB, payment_id=created["payment_id"]
    )
    assert (doc.filename, doc.content_type) == (f"receipt-{DECISION_NO}.pdf", "application/pdf")
    (receipt,) = renderer.rendered
    assert (receipt.party_name, receipt.plate_number) == ("张*", "渝A***45")
    assert receipt.amount_fen == 22_400 and receipt.provider_trade_no
    await raises(
        "PAYMENT_NOT_FOUND",
        get_receipt(world.deps, renderer=renderer, caller=ALICE, payment_id=created["payment_id"]),
    )


async def test_r_pay_9_feedback_is_limited_and_listed_with_provider_status(world: World) -> None:
    created = await world.create()
    pid = created["payment_id"]
    await raises(
        "VALIDATION_FAILED", file_feedback(world.deps, caller=ALICE, payment_id=pid, text="  ")
    )
    await raises(
        "VALIDATION_FAILED", file_feedback(world.deps, caller=ALICE, payment_id=pid, text="x" * 501)
    )
    await raises(
        "PAYMENT_NOT_FOUND", file_feedback(world.deps, caller=BOB, payment_id=pid, text="扣款了")
    )
    for i in range(5):
        world.clock.advance(timedelta(seconds=1))
        await file_feedback(world.deps, caller=ALICE, payment_id=pid, text=f" 已扣款未销账 {i} ")
    await raises(
        "FEEDBACK_LIMIT_REACHED",
        file_feedback(world.deps, caller=ALICE, payment_id=pid, text="again"),
    )
    cash_decision = world.add_decision(
        "5001030000000001", violation_id="0b6f1f0e-0000-4000-8000-0000000000c1"
    )
    cash = await world.counter(decision_no=cash_decision.decision_no)
    await file_feedback(world.deps, caller=ALICE, payment_id=cash["payment_id"], text="窗口缴了")
    world.provider.fail_next("query_trade", ProviderUnavailableError("timeout"))
    listed = await list_feedback(world.deps, caller=CLERK, limit=0)
    assert [e.feedback.text for e in listed][:2] == ["窗口缴了", "已扣款未销账 4"]
    assert listed[0].provider_status == "NONE"
    assert {e.provider_status for e in listed[1:]} == {"UNKNOWN"}
    listed = await list_feedback(world.deps, caller=CLERK, limit=2)
    assert [e.provider_status for e in listed] == ["NONE", "WAIT_BUYER_PAY"]
    await raises("FORBIDDEN", list_feedback(world.deps, caller=ALICE, limit=10))


# -- jobs (R-JOB-1, R-PAY-3/4) ----------------------------------------------------------
async def test_r_job_1_resolves_stuck_pending_payments_in_pages(world: World) -> None:
    ids = []
    for i in range(5):
        no = f"500103000000001{i}"
        world.add_decision(no, violation_id=f"0b6f1f0e-0000-4000-8000-0000000001{i:02d}")
        ids.append((await world.create(key=f"k{i}", decision_no=no))["payment_id"])
        world.clock.advance(timedelta(seconds=1))
    for pid in ids[:3]:
        world.provider.pay(world.payment(pid).out_trade_no)
    world.provider.fail_next("query_trade", ProviderUnavailableError("timeout"))
    world.clock.advance(timedelta(minutes=10))
    first = await run_job(world.deps, job="resolve_pending_payments", checkpoint="", batch_size=2)
    assert (first.items_done, first.done, first.errors) == (2, False, 1)
    second = await run_job(
        world.deps, job="resolve_pending_payments", checkpoint=first.checkpoint, batch_size=2
    )
    third = await run_job(
        world.deps, job="resolve_pending_payments", checkpoint=second.checkpoint, batch_size=2
    )
    assert (second.items_done, third.items_done, third.done) == (2, 1, True)
    states = [world.payment(pid).state for pid in ids]
    assert (
        states == [PaymentState.PENDING] + [PaymentState.SUCCEEDED] * 2 + [PaymentState.PENDING] * 2
    )
    again = await run_job(world.deps, job="resolve_pending_payments", checkpoint="", batch_size=10)
    assert again.items_done == 3 and world.payment(ids[0]).state is PaymentState.SUCCEEDED
    await raises("UNKNOWN_JOB", run_job(world.deps, job="nope", checkpoint="", batch_size=1))
    await raises(
        "VALIDATION_FAILED",
        run_job(world.deps, job="resolve_pending_payments", checkpoint="bad", batch_size=1),
    )


async def test_r_pay_3_keys_are_kept_48_hours_then_reaped(world: World) -> None:
    await world.create(key="old")
    world.clock.advance(timedelta(hours=47))
    job = await run_job(world.deps, job="reap_idempotency_keys", checkpoint="", batch_size=10)
    assert job.items_done == 0 and len(world.store.keys) == 1
    world.clock.advance(timedelta(hours=2))
    job = await run_job(world.deps, job="reap_idempotency_keys", checkpoint="", batch_size=10)
    assert (job.items_done, job.done) == (1, True) and world.store.keys == {}


# -- reconciliation (R-JOB-2) -----------------------------------------------------------
DAY = date(2026, 11, 19)
NIGHT = date(2026, 11, 20)
AT_NIGHT = datetime(2026, 11, 20, 22, 30, tzinfo=SHANGHAI)
PHONE = "13800138000"


async def _paid_on_the_day(world: World, index: int, *, notify: bool = True) -> Payment:
    """A decision paid online at the provider on DAY (told to us or not)."""
    no = f"500103000000002{index}"
    world.add_decision(no, violation_id=f"0b6f1f0e-0000-4000-8000-0000000002{index:02d}")
    world.clock.at = datetime(2026, 11, 19, 10, index, tzinfo=SHANGHAI)
    created = await world.create(key=f"rk{index}", decision_no=no)
    payment = world.payment(created["payment_id"])
    world.provider.pay(payment.out_trade_no, at=world.clock.now() + timedelta(seconds=30))
    if notify:
        assert (await world.notify(payment.out_trade_no))[0]
    return world.payment(payment.payment_id)


async def _reconcile(world: World, checkpoint: str = "") -> Any:
    return await run_job(
        world.deps,
        job="reconcile_payments",
        checkpoint=checkpoint,
        batch_size=100,
        as_of=AT_NIGHT,
        night=NIGHT,
    )


async def test_r_job_2_reconcile_lists_ours_only_theirs_only_and_amount_differs() -> None:
    world = World()
    matched = await _paid_on_the_day(world, 1)
    theirs = await _paid_on_the_day(world, 2, notify=False)  # the notification was lost
    differs = await _paid_on_the_day(world, 3)
    world.provider.trades[differs.out_trade_no].amount_fen = differs.amount_fen + 1
    ours = await _paid_on_the_day(world, 4)
    del world.provider.trades[ours.out_trade_no]  # the provider never saw it paid
    assert theirs.state is PaymentState.PENDING and matched.state is PaymentState.SUCCEEDED
    world.clock.at = AT_NIGHT

    batch = await _reconcile(world)

    assert (batch.done, batch.errors, batch.checkpoint) == (True, 0, "2026-11-19")
    assert batch.message == ("2026-11-19: 1 matched, 1 ours_only, 1 theirs_only, 1 amount_differs")
    _, result = world.store.reconciled[DAY]
    assert list(result.mismatches) == [
        Mismatch(MismatchKind.OURS_ONLY, ours.out_trade_no, ours.amount_fen, None),
        Mismatch(MismatchKind.THEIRS_ONLY, theirs.out_trade_no, None, theirs.amount_fen),
        Mismatch(
            MismatchKind.AMOUNT_DIFFERS,
            differs.out_trade_no,
            differs.amount_fen,
            differs.amount_fen + 1,
        ),
    ]
    assert (result.statement_lines, result.our_payments, result.matched) == (3, 3, 1)
    # staff read it; nobody else; a day never reconciled says so
    day = await get_reconciliation(world.deps, caller=CLERK, day=DAY)
    assert day is not None and day.mismatches == result.mismatches
    assert day.completed_at == AT_NIGHT
    assert await get_reconciliation(world.deps, caller=CLERK, day=NIGHT) is None
    await raises("FORBIDDEN", get_reconciliation(world.deps, caller=ALICE, day=DAY))
    await raises("VALIDATION_FAILED", get_reconciliation(world.deps, caller=CLERK, day=None))


async def test_r_job_2_running_twice_changes_nothing_and_a_healed_payment_matches() -> None:
    world = World()
    await _paid_on_the_day(world, 1)
    theirs = await _paid_on_the_day(world, 2, notify=False)
    world.clock.at = AT_NIGHT
    first = await _reconcile(world)
    before = copy.deepcopy(world.store.reconciled)
    # the runner resuming the same night: answered at once, nothing read or written
    calls = world.provider.calls["statement"]
    resumed = await _reconcile(world, first.checkpoint)
    assert (resumed.items_done, resumed.done) == (0, True)
    assert world.provider.calls["statement"] == calls
    # a fresh run of the night replaces the day with the same rows
    again = await _reconcile(world)
    assert again.message == first.message and world.store.reconciled == before
    # R-JOB-1 heals the lost notification (the one settlement path); the rerun matches it
    await run_job(world.deps, job="resolve_pending_payments", checkpoint="", batch_size=10)
    assert world.payment(theirs.payment_id).state is PaymentState.SUCCEEDED
    healed = await _reconcile(world)
    assert healed.message == "2026-11-19: 2 matched, 0 ours_only, 0 theirs_only, 0 amount_differs"
    assert world.store.reconciled[DAY][1].mismatches == ()


async def test_r_job_2_statement_not_available_yet_writes_nothing() -> None:
    world = World(now=AT_NIGHT)
    world.provider.fail_next("statement", ProviderRefusedError("isp.bill_not_exist"))
    batch = await _reconcile(world)
    assert (batch.done, batch.errors, batch.checkpoint) == (True, 0, "")
    assert batch.message == "2026-11-19: statement not available yet"
    world.provider.fail_next("statement", ProviderUnavailableError("timeout"))
    batch = await _reconcile(world)
    assert (batch.done, batch.errors, batch.message) == (
        True,
        1,
        "2026-11-19: provider unavailable",
    )
    assert world.store.reconciled == {} and world.store.commits == 0


async def test_r_job_2_a_crash_while_writing_leaves_nothing_and_the_rerun_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    await _paid_on_the_day(world, 1)
    world.clock.at = AT_NIGHT
    original = FakeReconciliation.replace_day

    async def crash(self: FakeReconciliation, result: Reconciliation, **kw: Any) -> None:
        await original(self, result, **kw)  # half written, then the process dies
        raise ConnectionError("server closed the connection")

    monkeypatch.setattr(FakeReconciliation, "replace_day", crash)
    with pytest.raises(ConnectionError):
        await _reconcile(world)
    assert world.store.reconciled == {}  # one transaction: rolled back whole
    monkeypatch.setattr(FakeReconciliation, "replace_day", original)
    batch = await _reconcile(world)  # the runner resumes from its last checkpoint ("")
    assert batch.checkpoint == "2026-11-19" and DAY in world.store.reconciled


def test_r_job_2_the_night_reconciles_the_day_before_whatever_the_hour() -> None:
    for local in (
        datetime(2026, 11, 20, 22, 0),
        datetime(2026, 11, 20, 23, 59),
        datetime(2026, 11, 21, 0, 29),
        datetime(2026, 11, 20, 15, 0),  # a forced daytime run
    ):
        assert night_of(local.replace(tzinfo=SHANGHAI)) == NIGHT
    assert night_of(datetime(2026, 11, 20, 14, 30, tzinfo=UTC)) == NIGHT  # 22:30 local
    assert day_to_reconcile(NIGHT) == DAY


# -- overdue decisions (R-JOB-6) --------------------------------------------------------
def _overdue_world() -> World:
    """Decisions around the due date on 20 Nov (12:00 local); the party has a phone."""
    world = World()
    for no, decided in (
        ("5001030000000301", date(2026, 11, 4)),  # its 16th day: overdue today
        ("5001030000000302", date(2026, 11, 5)),  # due today: not yet
        ("5001030000000303", date(2026, 10, 1)),  # long overdue
        ("5001030000000304", date(2026, 10, 2)),  # overdue but disputed
    ):
        world.add_decision(
            no,
            decision_date=decided,
            fine_fen=20_000,
            disputed=no.endswith("304"),
            violation_id=f"0b6f1f0e-0000-4000-8000-000000000{no[-3:]}",
        )
    world.store.phones[PARTY] = PHONE
    return world


async def _overdue(world: World, checkpoint: str = "", *, batch: int = 10, **kw: Any) -> Any:
    return await run_job(
        world.deps,
        job="notify_overdue_decisions",
        checkpoint=checkpoint,
        batch_size=batch,
        **kw,
    )


async def _overdue_night(world: World, *, batch: int = 10, **kw: Any) -> list[Any]:
    """A whole night: batches until done, as the runner calls them."""
    batches, checkpoint = [], ""
    while True:
        b = await _overdue(world, checkpoint, batch=batch, **kw)
        batches.append(b)
        checkpoint = b.checkpoint
        if b.done:
            return batches


async def test_r_job_6_overdue_decisions_are_marked_and_notified_by_one_sms() -> None:
    world = _overdue_world()
    batches = await _overdue_night(world, batch=1)
    assert [b.items_done for b in batches] == [1, 1, 1, 0]
    # R-PAY-2: from the 16th day; day 16 costs 3 % more, 50 days late the late fee is capped
    assert world.sms.sent == [
        (PHONE, "SMS_000000001", {"decision": "0303", "amount": "400.00"}),
        (PHONE, "SMS_000000001", {"decision": "0301", "amount": "206.00"}),
    ]
    assert {no: v[0] for no, v in world.store.overdue.items()} == {
        "5001030000000301": OverdueNotice.SMS_SENT,
        "5001030000000303": OverdueNotice.SMS_SENT,
    }
    assert world.store.overdue["5001030000000301"][2] == "sms-2"
    # running twice sends nothing more
    again = await _overdue_night(world)
    assert again[-1].items_done == 1 and len(world.sms.sent) == 2  # only the disputed one
    # as_of honoured: the next day the decision due today is overdue too
    tomorrow = NOW + timedelta(days=1)
    await _overdue_night(world, as_of=tomorrow)
    assert world.sms.sent[-1] == (PHONE, "SMS_000000001", {"decision": "0302", "amount": "206.00"})
    assert len(world.sms.sent) == 3


async def test_r_job_6_paid_and_phoneless_decisions_are_marked_without_sms() -> None:
    world = _overdue_world()
    world.clock.at = datetime(2026, 11, 3, 4, 0, tzinfo=UTC)
    paid = await world.create(key="early", decision_no="5001030000000303")
    world.provider.pay(paid["out_trade_no"])
    await world.notify(paid["out_trade_no"])
    world.clock.at = NOW
    world.store.phones[PARTY] = None
    await _overdue_night(world)
    assert world.sms.sent == []
    assert {no: v[0] for no, v in world.store.overdue.items()} == {
        "5001030000000301": OverdueNotice.NO_PHONE,
        "5001030000000303": OverdueNotice.PAID,
    }


async def test_r_job_6_a_failed_send_is_retried_the_next_night_and_sent_once() -> None:
    world = _overdue_world()
    world.sms.fail = 1
    night = await _overdue_night(world)
    assert (night[0].errors, len(world.sms.sent)) == (1, 1)
    assert "5001030000000303" not in world.store.overdue  # un-claimed: the first send failed
    # the next night (the checkpoint starts again) sends it, once
    await _overdue_night(world)
    await _overdue_night(world)
    assert sorted(p["decision"] for _, _, p in world.sms.sent) == ["0301", "0303"]


async def test_r_job_6_a_crash_between_batches_resumes_from_the_checkpoint() -> None:
    world = _overdue_world()
    first = await _overdue(world, batch=1)
    assert len(world.sms.sent) == 1
    # the runner died here; a new one resumes from the recorded checkpoint
    rest = await _overdue(world, first.checkpoint, batch=10)
    assert rest.done and len(world.sms.sent) == 2
    assert len({p["decision"] for _, _, p in world.sms.sent}) == 2


async def test_r_job_6_a_send_whose_outcome_is_unknown_is_never_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = _overdue_world()

    async def lost(**kw: Any) -> str:
        raise ConnectionResetError("the process lost the gateway mid-call")

    monkeypatch.setattr(world.sms, "send", lost)
    night = await _overdue_night(world)
    assert night[0].errors == 2
    assert {v[0] for v in world.store.overdue.values()} == {OverdueNotice.CLAIMED}
    monkeypatch.undo()
    await _overdue_night(world)
    assert world.sms.sent == []  # at most one SMS: a claimed decision is not sent again
    await raises("VALIDATION_FAILED", _overdue(world, "2026-11-04"))


# -- learning decisions from events (R-PAY-1) -------------------------------------------
def _facts(licence_id: str | None = None) -> ViolationFacts:
    return ViolationFacts(
        violation_id=VIOLATION_ID,
        vehicle_id=VEHICLE_ID,
        licence_id=licence_id,
        plate_number="渝A12345",
        violation_code="1345",
        description_zh="机动车违反禁令标志指示的",
        occurred_at=NOW - timedelta(days=2),
        place="解放碑",
        fine_fen=20_000,
        points=3,
    )


async def test_r_pay_1_recorded_decision_is_against_the_licence_holder_else_the_owner() -> None:
    store = FakeStore()
    c = FakeCopy(store)
    await c.upsert_vehicle(vehicle_id=VEHICLE_ID, owner_person_id="owner", plate_number="渝A12345")
    await c.upsert_licence(licence_id="lic", person_id="driver")
    await learn_recorded(c, _facts(), decision_no=None, decision_date=None, now=NOW)
    assert store.decisions == {}  # undecided camera record
    await learn_recorded(
        c, _facts("lic"), decision_no=DECISION_NO, decision_date=date(2026, 11, 1), now=NOW
    )
    assert store.decisions[DECISION_NO].party_person_id == "driver"
    store.decisions.clear()
    await learn_recorded(
        c, _facts(), decision_no=DECISION_NO, decision_date=date(2026, 11, 1), now=NOW
    )
    assert store.decisions[DECISION_NO].party_person_id == "owner"
    assert store.decisions[DECISION_NO].learned_from == "recorded"


class CountingCopy(FakeCopy):
    """Counts the calls that keep facts: one call = one round trip in the real adapter."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store)
        self.fact_calls: list[int] = []

    async def upsert_violations(self, facts: Sequence[ViolationFacts], *, now: datetime) -> None:
        self.fact_calls.append(len(facts))
        await super().upsert_violations(facts, now=now)


async def test_r_pay_1_a_run_of_recordings_learns_as_one_at_a_time_with_fewer_writes() -> None:
    """learn_recorded_many (the consumer's BatchHandler): the same decisions and facts as
    learn_recorded in order, the undecided ones between decisions kept in one call each."""
    run = [
        Recorded(dataclasses.replace(_facts(), violation_id="v1")),
        Recorded(dataclasses.replace(_facts(), violation_id="v2")),
        Recorded(
            dataclasses.replace(_facts("lic"), violation_id="v3"),
            decision_no=DECISION_NO,
            decision_date=date(2026, 11, 1),
        ),
        Recorded(dataclasses.replace(_facts(), violation_id="v4")),
        Recorded(dataclasses.replace(_facts(), violation_id="v1", place="朝天门")),  # again
    ]
    stores = FakeStore(), FakeStore()
    batched, single = CountingCopy(stores[0]), CountingCopy(stores[1])
    for c in (batched, single):
        await c.upsert_licence(licence_id="lic", person_id="driver")
    await learn_recorded_many(batched, run, now=NOW)
    for r in run:
        await learn_recorded(
            single, r.facts, decision_no=r.decision_no, decision_date=r.decision_date, now=NOW
        )
    assert stores[0].violations == stores[1].violations
    assert stores[0].decisions == stores[1].decisions
    assert stores[0].decisions[DECISION_NO].party_person_id == "driver"
    assert stores[0].violations["v1"][0].place == "朝天门"  # the later recording, as in order
    assert batched.fact_calls == [2, 1, 2]
    assert single.fact_calls == [1, 1, 1, 1, 1]


async def test_r_pay_1_handled_decision_takes_the_recorded_facts_and_dispute() -> None:
    store = FakeStore()
    c = FakeCopy(store)
    await learn_recorded(c, _facts(), decision_no=None, decision_date=None, now=NOW)
    await learn_disputed(c, violation_id=VIOLATION_ID, disputed=True, now=NOW)
    kwargs: dict[str, Any] = dict(
        violation_id=VIOLATION_ID,
        decision_no=DECISION_NO,
        decision_date=date(2026, 11, 19),
        fine_fen=20_000,
        points=3,
        handler_person_id="handler",
        handler_licence_id="lic",
        vehicle_id=VEHICLE_ID,
        now=NOW,
    )
    await learn_handled(c, **kwargs)
    d = store.decisions[DECISION_NO]
    assert (d.party_person_id, d.plate_number, d.place, d.disputed, d.learned_from) == (
        "handler",
        "渝A12345",
        "解放碑",
        True,
        "handled",
    )
    await learn_handled(c, **kwargs)  # redelivered: nothing changes
    assert store.decisions[DECISION_NO] == d
    await learn_disputed(c, violation_id=VIOLATION_ID, disputed=False, now=NOW)
    assert not store.decisions[DECISION_NO].disputed
