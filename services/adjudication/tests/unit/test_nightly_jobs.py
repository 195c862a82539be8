"""Adjudication's nightly jobs without I/O: the pure scoring-cycle rollover rule (R-JOB-5),
what a decision notice prints (R-ADJ-7), and the use cases (RunJob's two jobs, R-JOB-3 and
R-JOB-5, and GetDecisionNotice) on in-memory fakes of the jobs' unit of work."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from cqadjudication.domain.callers import Caller
from cqadjudication.domain.events import DomainEvent, PointsChanged
from cqadjudication.domain.notices import (
    NoticeFacts,
    authority_lines,
    created_at,
    filename,
    notice_paragraphs,
    notice_rows,
    title,
)
from cqadjudication.domain.points import (
    CYCLE_ROLLOVER,
    LedgerRow,
    PointsEntry,
    RolloverCandidate,
    clears,
    roll_once,
    rollover,
)
from cqadjudication.ports import JobsUnitOfWork, StoredNotice
from cqadjudication.service_layer.jobs import (
    CYCLE_ROLLOVER_JOB,
    GENERATE_NOTICES,
    run_job,
)
from cqadjudication.service_layer.notices import get_decision_notice
from cqcommon.errors import DomainError

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 on 1 March in Chongqing
FIRST_ISSUED = date(2015, 3, 1)
ENDED = (date(2025, 3, 1), date(2026, 2, 28))  # the cycle that ended yesterday
NEXT = (date(2026, 3, 1), date(2027, 2, 28))
LIMIT = 12


def ledger(points: int, cycle: tuple[date, date] = ENDED, licence_id: str = "L1") -> LedgerRow:
    return LedgerRow(licence_id, points, cycle[0], cycle[1], None)


# -- the pure rule -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("points", "unpaid", "cleared"),
    [(0, False, True), (11, False, True), (12, False, False), (15, False, False),
     (3, True, False), (0, True, False)],
)  # fmt: skip
def test_r_job_5_below_12_with_every_fine_paid_clears_else_carries(
    points: int, unpaid: bool, cleared: bool
) -> None:
    assert clears(points, unpaid_fines=unpaid, limit=LIMIT) is cleared
    step = roll_once(
        ledger(points), first_issued_on=FIRST_ISSUED, unpaid_fines=unpaid, limit=LIMIT, now=NOW
    )
    assert step.cleared is cleared
    assert (step.row.cycle_start, step.row.cycle_end) == NEXT
    assert step.row.points == (0 if cleared else points)
    assert step.delta == step.row.points - points
    assert all(e.channel == CYCLE_ROLLOVER for e in step.entries)


@pytest.mark.parametrize("carried", [True, False])
def test_r_job_5_entries_keep_the_ledger_equal_to_its_cycle_and_to_all_entries(
    carried: bool,
) -> None:
    """A closing entry takes the ended cycle's points out; carried points open the new
    cycle: the row == sum of the new cycle's entries == sum of every entry."""
    old = ledger(7)
    history = [PointsEntry("L1", 7, 7, "online", "v1", ENDED[0], NOW - timedelta(days=90))]
    step = roll_once(old, first_issued_on=FIRST_ISSUED, unpaid_fines=carried, limit=LIMIT, now=NOW)
    entries = history + list(step.entries)
    in_new = [e for e in entries if e.cycle_start == step.row.cycle_start]
    assert sum(e.delta for e in in_new) == step.row.points
    assert sum(e.delta for e in entries) == step.row.points
    assert sum(e.delta for e in entries if e.cycle_start == ENDED[0]) == 0
    assert step.entries[0] == PointsEntry("L1", -7, 0, CYCLE_ROLLOVER, None, ENDED[0], NOW)
    assert len(step.entries) == (2 if carried else 1)


def test_r_job_5_boundary_day_the_cycles_last_day_is_still_inside() -> None:
    row = ledger(5)
    last_day, next_day = ENDED[1], ENDED[1] + timedelta(days=1)
    args = {"first_issued_on": FIRST_ISSUED, "unpaid_since": None, "limit": LIMIT, "now": NOW}
    assert rollover(row, today=last_day, **args) == []  # type: ignore[arg-type]
    steps = rollover(row, today=next_day, **args)  # type: ignore[arg-type]
    assert [(s.row.cycle_start, s.row.points) for s in steps] == [(next_day, 0)]
    # rolled already: the same day again changes nothing (idempotent)
    assert rollover(steps[-1].row, today=next_day, **args) == []  # type: ignore[arg-type]


def test_r_job_5_a_ledger_two_cycles_behind_rolls_once_per_cycle_end() -> None:
    behind = ledger(14, (date(2024, 3, 1), date(2025, 2, 28)))
    steps = rollover(
        behind, first_issued_on=FIRST_ISSUED, today=date(2026, 3, 1), unpaid_since=None,
        limit=LIMIT, now=NOW,
    )  # fmt: skip
    # 14 >= 12 carries at the first end; still 14 at the second: carries again
    assert [(s.row.cycle_start, s.row.points, s.cleared) for s in steps] == [
        (date(2025, 3, 1), 14, False),
        (date(2026, 3, 1), 14, False),
    ]
    cleared = rollover(
        dataclasses.replace(behind, points=4), first_issued_on=FIRST_ISSUED,
        today=date(2026, 3, 1), unpaid_since=None, limit=LIMIT, now=NOW,
    )  # fmt: skip
    assert [s.row.points for s in cleared] == [0, 0]
    assert [s.delta for s in cleared] == [-4, 0]


def test_r_job_5_an_unpaid_fine_decided_in_an_earlier_cycle_keeps_the_points_carrying() -> None:
    behind = ledger(4, (date(2024, 3, 1), date(2025, 2, 28)))
    args = {"first_issued_on": FIRST_ISSUED, "today": date(2026, 3, 1), "limit": LIMIT, "now": NOW}
    old_fine = rollover(behind, unpaid_since=date(2024, 6, 1), **args)  # type: ignore[arg-type]
    assert [s.row.points for s in old_fine] == [4, 4]
    # a fine decided after the first cycle's end does not hold that end back
    new_fine = rollover(behind, unpaid_since=date(2025, 6, 1), **args)  # type: ignore[arg-type]
    assert [s.row.points for s in new_fine] == [0, 0]
    assert [s.cleared for s in new_fine] == [True, False]


def test_r_job_5_a_licence_first_issued_on_29_february() -> None:
    row = ledger(0, (date(2024, 2, 29), date(2025, 2, 27)))
    steps = rollover(
        row, first_issued_on=date(2012, 2, 29), today=date(2025, 2, 28), unpaid_since=None,
        limit=LIMIT, now=NOW,
    )  # fmt: skip
    assert [(s.row.cycle_start, s.row.cycle_end) for s in steps] == [
        (date(2025, 2, 28), date(2026, 2, 27))
    ]


# -- the notice's text -----------------------------------------------------------------------
FACTS = NoticeFacts(
    decision_no="5001040000000123",
    decision_date=date(2026, 11, 20),
    violation_id="v-1",
    procedure="simple",
    party_name="欧阳堃",
    party_id_number="500101199001011234",
    plate_type="02",
    plate_number="渝A12345",
    violation_code="1345",
    description_zh="机动车违反禁令标志指示的",
    occurred_at=datetime(2026, 11, 18, 1, 2, tzinfo=UTC),
    place="重庆市渝中区解放碑",
    fine_fen=20_000,
    points=3,
    authority_code="500104",
)


def _all_text(facts: NoticeFacts) -> str:
    parts = [title(facts), *(p for row in notice_rows(facts) for p in row)]
    return "\n".join([*parts, *notice_paragraphs(facts), *authority_lines(facts)])


def test_r_adj_7_the_notice_names_decision_party_vehicle_violation_fine_due_date() -> None:
    rows = dict(notice_rows(FACTS))
    assert rows["决定书编号"] == "5001040000000123"
    assert rows["被处罚人"] == "欧阳堃"
    assert rows["身份证明号码"] == "5001**********1234"
    assert rows["违法时间"] == "2026-11-18 09:02"  # Asia/Shanghai
    assert rows["罚款金额"] == "200.00 元" and rows["记分"] == "3 分"
    assert rows["缴款期限"].startswith("2026-12-05")  # decision + 15 days (R-PAY-2)
    text = _all_text(FACTS)
    assert "500101199001011234" not in text  # no full ID number anywhere
    for needle in ("支付宝", "窗口", "3%", "不超过罚款数额", "500104", "简易程序处罚决定书"):
        assert needle in text
    assert title(dataclasses.replace(FACTS, procedure="general")) == "公安交通管理行政处罚决定书"
    assert created_at(FACTS) == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)
    assert filename("5001040000000123") == "处理通知书-5001040000000123.pdf"


# -- fakes -----------------------------------------------------------------------------------
class FakeNotices:
    def __init__(self) -> None:
        self.stored: dict[str, StoredNotice] = {}
        self.decided: dict[str, NoticeFacts | None] = {}  # None: party not known yet

    async def get(self, decision_no: str) -> StoredNotice | None:
        return self.stored.get(decision_no)

    async def is_decided(self, decision_no: str) -> bool:
        return decision_no in self.decided

    async def due(self, *, after: str | None, limit: int) -> list[str]:
        todo = sorted(n for n in self.decided if n > (after or "") and n not in self.stored)
        return todo[:limit]

    async def facts(self, decision_nos: Sequence[str]) -> dict[str, NoticeFacts]:
        return {n: f for n in decision_nos if (f := self.decided.get(n)) is not None}

    async def add(self, notice: StoredNotice) -> StoredNotice:
        return self.stored.setdefault(notice.decision_no, notice)


class FakeRollover:
    def __init__(self) -> None:
        self.ledgers: dict[str, RolloverCandidate] = {}
        self.entries: list[PointsEntry] = []
        self.unpaid: dict[str, date] = {}

    async def lock_due(
        self, *, today: date, after: str | None, limit: int
    ) -> list[RolloverCandidate]:
        due = sorted(
            (
                c
                for lid, c in self.ledgers.items()
                if lid > (after or "") and c.row.cycle_end < today
            ),
            key=lambda c: c.row.licence_id,
        )
        return due[:limit]

    async def unpaid_since(self, licence_ids: Sequence[str]) -> dict[str, date]:
        return {lid: self.unpaid[lid] for lid in licence_ids if lid in self.unpaid}

    async def roll(self, row: LedgerRow, entries: Sequence[PointsEntry], *, now: datetime) -> None:
        self.ledgers[row.licence_id] = dataclasses.replace(self.ledgers[row.licence_id], row=row)
        self.entries.extend(entries)


class FakeJobsUnitOfWork:
    def __init__(self) -> None:
        self.notices = FakeNotices()
        self.rollover = FakeRollover()
        self.events: list[DomainEvent] = []
        self.commits = 0
        self._pending: list[DomainEvent] = []

    def record(self, event: DomainEvent) -> None:
        self._pending.append(event)

    async def commit(self) -> None:
        self.events.extend(self._pending)
        self._pending.clear()
        self.commits += 1

    def uows(self) -> contextlib.AbstractAsyncContextManager[JobsUnitOfWork]:
        @contextlib.asynccontextmanager
        async def session() -> AsyncIterator[JobsUnitOfWork]:
            try:
                yield self
            finally:
                self._pending.clear()  # not committed: the events go with the transaction

        return session()


class FakeRenderer:
    content_type = "application/pdf"

    def __init__(self) -> None:
        self.rendered: list[str] = []

    async def render(self, facts: NoticeFacts) -> bytes:
        self.rendered.append(facts.decision_no)
        return f"PDF {facts.decision_no} {facts.party_name}".encode()


async def job(
    uow: FakeJobsUnitOfWork, name: str, checkpoint: str = "", batch: int = 0,
    renderer: FakeRenderer | None = None, now: datetime = NOW,
) -> tuple[int, str, bool, int]:  # fmt: skip
    b = await run_job(
        uows=uow.uows, renderer=renderer or FakeRenderer(), job=name, checkpoint=checkpoint,
        batch_size=batch, now=now, points_limit=LIMIT,
    )  # fmt: skip
    return b.items_done, b.checkpoint, b.done, b.errors


def _licence(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def rollover_world() -> FakeJobsUnitOfWork:
    uow = FakeJobsUnitOfWork()
    for n, points in enumerate([0, 5, 12, 3, 8], start=1):
        lid = _licence(n)
        uow.rollover.ledgers[lid] = RolloverCandidate(
            ledger(points, licence_id=lid), f"p{n}", FIRST_ISSUED
        )
    # still running: due next year
    lid = _licence(9)
    uow.rollover.ledgers[lid] = RolloverCandidate(ledger(6, NEXT, lid), "p9", FIRST_ISSUED)
    uow.rollover.unpaid[_licence(4)] = date(2025, 12, 1)  # an unpaid fine in the ended cycle
    return uow


# -- use cases on the fakes -------------------------------------------------------------------
async def test_r_job_5_rollover_job_clears_carries_and_publishes_points_changed() -> None:
    uow = rollover_world()
    assert await job(uow, CYCLE_ROLLOVER_JOB) == (5, _licence(5), True, 0)
    points = {lid: c.row.points for lid, c in uow.rollover.ledgers.items()}
    assert points == {
        _licence(1): 0, _licence(2): 0, _licence(3): 12, _licence(4): 3, _licence(5): 0,
        _licence(9): 6,
    }  # fmt: skip
    assert {c.row.cycle_start for c in uow.rollover.ledgers.values()} == {NEXT[0]}
    changed = [e for e in uow.events if isinstance(e, PointsChanged)]
    assert [(e.licence_id, e.delta, e.points_after, e.channel) for e in changed] == [
        (_licence(1), 0, 0, "cycle_rollover"),
        (_licence(2), -5, 0, "cycle_rollover"),
        (_licence(3), 0, 12, "cycle_rollover"),
        (_licence(4), 0, 3, "cycle_rollover"),
        (_licence(5), -8, 0, "cycle_rollover"),
    ]
    assert all((e.cycle_start, e.cycle_end) == NEXT and e.person_id for e in changed)


async def test_r_job_5_rollover_twice_changes_nothing_the_second_time() -> None:
    uow = rollover_world()
    await job(uow, CYCLE_ROLLOVER_JOB)
    entries, events = list(uow.rollover.entries), list(uow.events)
    assert await job(uow, CYCLE_ROLLOVER_JOB) == (0, "", True, 0)
    assert (uow.rollover.entries, uow.events) == (entries, events)


async def test_r_job_5_rollover_resumes_from_its_checkpoint_in_bounded_batches() -> None:
    uow = rollover_world()
    first = await job(uow, CYCLE_ROLLOVER_JOB, batch=2)
    assert first == (2, _licence(2), False, 0)
    # "crash": the runner calls again with the last recorded checkpoint
    second = await job(uow, CYCLE_ROLLOVER_JOB, checkpoint=first[1], batch=2)
    third = await job(uow, CYCLE_ROLLOVER_JOB, checkpoint=second[1], batch=2)
    assert (second[0], third[0], third[2]) == (2, 1, True)
    assert len(uow.events) == 5  # each ledger rolled once
    assert uow.commits == 3


async def test_r_job_5_rollover_day_is_the_as_of_day_in_asia_shanghai() -> None:
    uow = rollover_world()
    # 28 Feb 15:59 UTC is 23:59 on the cycle's last day in Chongqing: nothing ended yet
    assert await job(uow, CYCLE_ROLLOVER_JOB, now=datetime(2026, 2, 28, 15, 59, tzinfo=UTC)) == (
        0, "", True, 0,
    )  # fmt: skip
    # 16:00 UTC is already 1 March there
    done = await job(uow, CYCLE_ROLLOVER_JOB, now=datetime(2026, 2, 28, 16, 0, tzinfo=UTC))
    assert done[0] == 5


async def test_unknown_job_and_bad_checkpoints_are_refused() -> None:
    uow = FakeJobsUnitOfWork()
    with pytest.raises(DomainError) as unknown:
        await job(uow, "expire_sms_follows")
    assert unknown.value.code == "UNKNOWN_JOB"
    assert set(unknown.value.details["jobs"]) == {CYCLE_ROLLOVER_JOB, GENERATE_NOTICES}
    for name, bad in ((CYCLE_ROLLOVER_JOB, "not-a-uuid"), (GENERATE_NOTICES, "12ab")):
        with pytest.raises(DomainError) as refused:
            await job(uow, name, checkpoint=bad)
        assert refused.value.code == "VALIDATION_FAILED"


def notices_world() -> FakeJobsUnitOfWork:
    uow = FakeJobsUnitOfWork()
    for n in range(1, 6):
        no = f"50010400000001{n:02d}"
        uow.notices.decided[no] = dataclasses.replace(FACTS, decision_no=no, violation_id=f"v{n}")
    return uow


async def test_r_job_3_every_decision_gets_its_notice_once() -> None:
    uow, renderer = notices_world(), FakeRenderer()
    assert await job(uow, GENERATE_NOTICES, renderer=renderer) == (5, "5001040000000105", True, 0)
    assert sorted(uow.notices.stored) == sorted(uow.notices.decided)
    assert all(n.generated_at == NOW for n in uow.notices.stored.values())
    assert await job(uow, GENERATE_NOTICES, renderer=renderer) == (0, "", True, 0)
    assert len(renderer.rendered) == 5  # nothing rendered twice


async def test_r_job_3_a_crash_after_one_batch_resumes_without_redoing() -> None:
    uow, renderer = notices_world(), FakeRenderer()
    first = await job(uow, GENERATE_NOTICES, batch=2, renderer=renderer)
    assert first == (2, "5001040000000102", False, 0)
    rest = await job(uow, GENERATE_NOTICES, checkpoint=first[1], batch=10, renderer=renderer)
    assert rest[0] == 3 and rest[2]
    assert renderer.rendered == sorted(uow.notices.decided)


async def test_r_job_3_a_decision_whose_party_is_unknown_waits_and_counts_an_error() -> None:
    uow = notices_world()
    uow.notices.decided["5001040000000103"] = None
    assert await job(uow, GENERATE_NOTICES) == (4, "5001040000000105", True, 1)
    assert "5001040000000103" not in uow.notices.stored


CLERK = Caller(staff_id="clerk01", staff_role="clerk")


async def notice(uow: FakeJobsUnitOfWork, caller: Caller, number: str) -> StoredNotice:
    doc = await get_decision_notice(
        uows=uow.uows, renderer=FakeRenderer(), caller=caller, decision_no=number, now=NOW
    )
    assert doc.content_type == "application/pdf" and doc.filename.endswith(f"{number}.pdf")
    return doc.notice


async def test_r_adj_7_staff_get_a_notice_made_at_once_when_the_job_has_not_come_by() -> None:
    uow = notices_world()
    made = await notice(uow, CLERK, "5001040000000102")
    assert made.content == "PDF 5001040000000102 欧阳堃".encode()
    assert uow.notices.stored["5001040000000102"] == made  # stored: the job skips it
    later = await get_decision_notice(
        uows=uow.uows, renderer=FakeRenderer(), caller=CLERK, decision_no="5001040000000102",
        now=NOW + timedelta(hours=3),
    )  # fmt: skip
    assert later.notice == made  # served as stored


@pytest.mark.parametrize(
    ("caller", "number", "code"),
    [
        (Caller(user_id="u1", person_id="p1"), "5001040000000102", "FORBIDDEN"),
        (CLERK, "12345", "INVALID_DECISION_NO"),
        (CLERK, "5001049999999999", "DECISION_NOTICE_NOT_FOUND"),
    ],
)
async def test_r_adj_7_notice_refusals(caller: Caller, number: str, code: str) -> None:
    uow = notices_world()
    with pytest.raises(DomainError) as refused:
        await notice(uow, caller, number)
    assert refused.value.code == code
    assert not uow.notices.stored


async def test_r_adj_7_a_notice_whose_party_is_unknown_answers_unavailable() -> None:
    uow = notices_world()
    uow.notices.decided["5001040000000103"] = None
    with pytest.raises(DomainError) as refused:
        await notice(uow, CLERK, "5001040000000103")
    assert refused.value.code == "HANDLING_IDENTITY_UNAVAILABLE"
