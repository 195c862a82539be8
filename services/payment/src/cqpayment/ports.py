"""Ports (typing.Protocol) the payment use cases depend on. Adapters implement them
(PostgreSQL, the Alipay trade API, the PDF renderer); unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Protocol

from cqpayment.domain.callers import Caller
from cqpayment.domain.decisions import Decision, PaymentStatus, ViolationFacts
from cqpayment.domain.events import DomainEvent
from cqpayment.domain.feedback import Feedback, FeedbackEntry
from cqpayment.domain.idempotency import KeyId, StoredKey
from cqpayment.domain.overdue import OverdueCandidate, OverdueNotice
from cqpayment.domain.payments import Payment
from cqpayment.domain.provider import (
    ProviderNotification,
    ProviderRefund,
    ProviderTrade,
    StatementLine,
)
from cqpayment.domain.receipts import Receipt
from cqpayment.domain.reconciliation import OurPayment, ReconciledDay, Reconciliation
from cqpayment.domain.refunds import Refund


class TradeProvider(Protocol):
    """The payment provider's trade API (Alipay: ``alipay.trade.*``).

    Every call has a deadline (``ALIPAY_TIMEOUT_S``). A call that gets no trustworthy answer
    raises ``ProviderUnavailableError`` (outcome unknown); a business refusal raises
    ``ProviderRefusedError``.
    """

    async def create_trade(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        buyer_id: str,
        expires_at: datetime,
    ) -> str:
        """Create (or, for the same ``out_trade_no`` and amount, find again) an unpaid trade
        the buyer pays in the mini-program; returns the provider's trade number. The trade
        closes by itself at ``expires_at``."""
        ...

    async def query_trade(self, out_trade_no: str) -> ProviderTrade | None:
        """The trade as the provider sees it; None when the provider never created it."""
        ...

    async def close_trade(self, out_trade_no: str) -> None:
        """Close an unpaid trade so it can no longer be paid. A trade the provider never
        created counts as closed. Raises ``TradeAlreadyPaidError`` when it has been paid."""
        ...

    async def refund(
        self, *, out_trade_no: str, amount_fen: int, out_request_no: str, reason: str
    ) -> ProviderRefund:
        """Refund (part of) a paid trade; the same ``out_request_no`` again moves no money."""
        ...

    def verify_notification(self, params: Mapping[str, str]) -> ProviderNotification:
        """Check a notification's signature with the provider's public key and parse it.
        Raises ``NotificationRejectedError`` ("bad_signature", "malformed") otherwise."""
        ...

    async def statement(self, day: date) -> list[StatementLine]:
        """The provider's statement of ``day`` (Asia/Shanghai): trades paid that day."""
        ...


class DecisionRepository(Protocol):
    """Payable decisions (R-PAY-1) inside one transaction."""

    async def get(self, decision_no: str) -> Decision | None: ...

    async def lock(self, decision_no: str) -> Decision | None:
        """The decision, its row locked until the transaction ends (SELECT ... FOR UPDATE):
        every change to the decision's payments takes this lock first, so they queue."""
        ...

    async def party_name(self, person_id: str) -> str | None:
        """The name of a person from the registry copy, or None."""
        ...

    async def status(self, decision_no: str, now: datetime) -> PaymentStatus:
        """Paid when a payment succeeded; in progress while an unexpired one is pending."""
        ...


class PaymentRepository(Protocol):
    """Payments inside one transaction. The database allows a decision one ``pending`` and
    one ``succeeded`` payment at most (R-PAY-3), whatever the code does."""

    async def add(self, payment: Payment) -> None: ...

    async def get(self, payment_id: str) -> Payment | None:
        """The payment, or None (also for an id that is not a UUID)."""
        ...

    async def get_for(self, payment_id: str, caller: Caller) -> Payment | None:
        """The payment if the caller may see it (``Payment.visible_to``), else None: one
        query for both, so another's payment and an unknown id answer alike (R-PAY-4)."""
        ...

    async def lock(self, payment_id: str) -> Payment | None:
        """The payment, its row locked until the transaction ends."""
        ...

    async def by_out_trade_no(self, out_trade_no: str) -> Payment | None: ...

    async def pending_of(self, decision_no: str) -> Payment | None:
        """The decision's pending payment, locked (there is at most one)."""
        ...

    async def succeeded_of(self, decision_no: str) -> Payment | None:
        """The decision's succeeded payment (there is at most one)."""
        ...

    async def save(self, payment: Payment, *, now: datetime) -> None:
        """Write the payment's state, provider trade number, paid time and failure reason."""
        ...

    async def pending_page(
        self, *, created_before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[Payment]:
        """Pending payments created before ``created_before``, in (created_at, payment_id)
        order after the key ``after`` (keyset paging for the R-JOB-1 job)."""
        ...


class IdempotencyKeyRepository(Protocol):
    """R-PAY-3: keys with their request fingerprint and first response."""

    async def claim(self, key: KeyId, *, request_hash: str, now: datetime) -> StoredKey | None:
        """Insert the key ``in_flight`` and locked now, and return None; or, when it exists,
        return it with its row locked (INSERT ... ON CONFLICT DO NOTHING, then SELECT ...
        FOR UPDATE)."""
        ...

    async def lock_again(self, key: KeyId, *, now: datetime) -> None:
        """Take over an abandoned key: lock it now."""
        ...

    async def attach(self, key: KeyId, payment_id: str) -> None:
        """Name the payment this key's request made (or carries on with)."""
        ...

    async def complete(self, key: KeyId, *, response: bytes, now: datetime) -> None:
        """Store the first response; later requests with the key replay it."""
        ...

    async def unlock(self, key: KeyId) -> None:
        """Give the key up without an outcome (``locked_at`` NULL): a retry takes over."""
        ...

    async def release(self, key: KeyId) -> None:
        """Forget the key (nothing was done): the client may send the request again."""
        ...

    async def reap(self, *, older_than: datetime, limit: int) -> int:
        """Delete up to ``limit`` keys completed (or abandoned in flight) before
        ``older_than``; returns how many."""
        ...


class NotificationRepository(Protocol):
    """Provider notifications: accepted ones by ``notify_id``, rejected ones counted."""

    async def add_accepted(
        self, *, notify_id: str, out_trade_no: str, trade_state: str, now: datetime
    ) -> bool:
        """Record an accepted notification; False when its ``notify_id`` was seen before."""
        ...

    async def add_rejected(self, *, reason: str, out_trade_no: str | None, now: datetime) -> None:
        """Keep a rejected notification's reason (R-PAY-7: logged and counted)."""
        ...


class RefundRepository(Protocol):
    async def add(self, refund: Refund) -> None: ...

    async def get(self, refund_id: str) -> Refund | None:
        """The refund (None also for a non-UUID id)."""
        ...

    async def lock(self, refund_id: str) -> Refund | None:
        """The refund, its row locked (None also for a non-UUID id)."""
        ...

    async def save(self, refund: Refund) -> None:
        """Write the refund's state, approver and times."""
        ...

    async def list(self, *, state: str | None, limit: int) -> list[Refund]:
        """Oldest first (the queue a supervisor works through), optionally of one state."""
        ...


class FeedbackRepository(Protocol):
    async def add(self, feedback: Feedback) -> None: ...

    async def count_for(self, payment_id: str) -> int: ...

    async def newest(self, *, limit: int) -> list[FeedbackEntry]:
        """Newest first, each with its payment's decision, state and order number."""
        ...


class ReconciliationRepository(Protocol):
    """R-JOB-2: our side of a day and the stored outcome of each reconciled day."""

    async def our_payments(
        self, *, paid_from: datetime, paid_until: datetime, out_trade_nos: Sequence[str]
    ) -> list[OurPayment]:
        """Our online (Alipay) payments held paid with ``paid_at`` in [from, until), and
        every online payment whatever its state whose order number is in
        ``out_trade_nos`` (one statement's lines)."""
        ...

    async def replace_day(self, result: Reconciliation, *, completed_at: datetime) -> None:
        """Store the day's outcome in place of any earlier one (its mismatches included)."""
        ...

    async def day(self, day: date) -> ReconciledDay | None:
        """The stored outcome of ``day``, or None when it was never reconciled."""
        ...


class OverdueRepository(Protocol):
    """R-JOB-6: decisions past their due date and what the job did about each."""

    async def candidates(
        self, *, dated_until: date, after: tuple[date, str] | None, limit: int
    ) -> list[OverdueCandidate]:
        """Decisions dated on or before ``dated_until`` with no overdue notice yet, in
        (decision_date, decision_no) order after the key ``after``, their rows locked (rows
        locked by someone else are skipped: a later night takes them)."""
        ...

    async def mark(self, decision_no: str, notice: OverdueNotice, *, now: datetime) -> None:
        """Record what the job decided (``claimed`` before an SMS is sent)."""
        ...

    async def sent(self, decision_no: str, *, sms_id: str, now: datetime) -> None:
        """A claimed decision's SMS went out."""
        ...

    async def unclaim(self, decision_no: str) -> None:
        """A claimed decision's SMS failed: forget the claim, the next night retries."""
        ...


class UnitOfWork(Protocol):
    """One transaction: ``async with uow: ...; await uow.commit()``.

    Leaving the block without ``commit()`` rolls everything back, events included (they
    reach the outbox only at commit). A constraint the database enforces becomes its
    stable error after the rollback.
    """

    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def keys(self) -> IdempotencyKeyRepository: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def refunds(self) -> RefundRepository: ...

    @property
    def feedback(self) -> FeedbackRepository: ...

    @property
    def reconciliation(self) -> ReconciliationRepository: ...

    @property
    def overdue(self) -> OverdueRepository: ...

    def record(self, event: DomainEvent) -> None: ...

    def reading(self) -> UnitOfWork:
        """This unit of work for reads only: no transaction (no BEGIN/ROLLBACK round trips);
        ``record`` and ``commit`` refuse."""
        ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


#: A new unit of work per transaction: a use case that calls the provider between two
#: transactions (never inside one) opens several.
UnitOfWorkFactory = Callable[[], UnitOfWork]


class DecisionCopy(Protocol):
    """Payment's copy of what it needs from adjudication and the registry (decisions, the
    facts of violations, persons' names and phones, vehicles' owners and plates, licences'
    holders), written by the event consumers inside their inbox transaction. Every write
    is an upsert by id: a redelivered event changes nothing."""

    async def upsert_person(self, *, person_id: str, name: str, phone: str | None = None) -> None:
        """The person's name and phone on record (None: none; R-JOB-6 sends no SMS)."""
        ...

    async def upsert_vehicle(
        self, *, vehicle_id: str, owner_person_id: str, plate_number: str
    ) -> None:
        """Also fills the party of decisions learned before the owner was known."""
        ...

    async def upsert_licence(self, *, licence_id: str, person_id: str) -> None:
        """Also fills the party of decisions learned before the holder was known."""
        ...

    async def licence_holder(self, licence_id: str) -> str | None: ...

    async def vehicle_owner(self, vehicle_id: str) -> str | None: ...

    async def upsert_violations(self, facts: Sequence[ViolationFacts], *, now: datetime) -> None:
        """Keep each violation's facts, in their order (a later one of the same violation
        replaces an earlier one), and fill them into the violation's decision if one came
        first; several at once, as a run of recordings arrives."""
        ...

    async def violation(self, violation_id: str) -> tuple[ViolationFacts, bool] | None:
        """The facts of a violation and whether it is disputed, or None."""
        ...

    async def upsert_decision(self, decision: Decision, *, now: datetime) -> None:
        """Insert the decision, or leave an existing one as it is (first word wins)."""
        ...

    async def set_disputed(self, violation_id: str, disputed: bool, *, now: datetime) -> None:
        """R-ADJ-9 on the violation and on its decision, if any."""
        ...


class ReceiptRenderer(Protocol):
    """R-PAY-8: a receipt as a printable document (PDF)."""

    def render(self, receipt: Receipt) -> bytes: ...
