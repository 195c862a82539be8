"""Every database constraint a request can hit answers a 4xx (R-ERR-1), against the real
PostgreSQL and the real adjudication gRPC server.

* The walk over every schema's constraints is ``tests/integration/test_constraint_tables.py``
  (this schema's table: ``cqadjudication.adapters.constraints``).
* The race the domain cannot see: two violations with the same decision number, recorded
  through ``RecordViolation``, give ``DECISION_NO_CONFLICT`` and the failed call writes
  nothing (no row, no outbox event).
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from cqadjudication.adapters.postgres_registry import PostgresRegistryCopy
from cqcommon.errors import DomainError
from cqcommon.grpc_client import call
from cqcommon.protomap import date_to_proto, timestamp_to_proto
from cqcommon.settings import Settings
from cqdev.testing import fetch_rows
from cqtraffic.adjudication.v1 import adjudication_pb2 as pb
from cqtraffic.common.v1 import types_pb2 as common

if TYPE_CHECKING:
    from cqtraffic.adjudication.v1.adjudication_pb2_grpc import AdjudicationServiceAsyncStub

#: The ``registry_copy`` fixture (conftest).
RegistryCopies = Callable[
    [Mapping[str, int]], contextlib.AbstractAsyncContextManager[PostgresRegistryCopy]
]

pytestmark = pytest.mark.integration


# -- through the real gRPC server (the ``adjudication`` fixture: conftest) ----------------
@pytest.fixture
async def plate(registry_copy: RegistryCopies) -> str:
    """A vehicle (and the codes used here) in adjudication's registry copy, as the registry
    consumer would have written it."""
    number = f"渝A{random.randrange(10_000, 100_000)}"
    async with registry_copy({"1345": 3, "1636": 6}) as copy:
        await copy.upsert_vehicle(
            vehicle_id=str(uuid.uuid4()),
            plate_type="02",
            plate_number=number,
            vin=f"LS5A3AJE7KS{random.randrange(100_000, 1_000_000)}",
            owner_person_id=str(uuid.uuid4()),
        )
    return number


def record_request(plate: str, record_id: str, **overrides: Any) -> pb.RecordViolationRequest:
    occurred = datetime.now(UTC) - timedelta(days=3)
    fields: dict[str, Any] = {
        "source_system": "camera-net",
        "source_record_id": record_id,
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "plate_number": plate,
        "violation_code": "1345",
        "occurred_at": timestamp_to_proto(occurred),
        "place": "重庆市渝中区解放碑",
        "fine_fen": 20_000,
        "source": common.VIOLATION_SOURCE_NON_SITE,
        "procedure": common.PROCEDURE_SIMPLE,
    }
    return pb.RecordViolationRequest(**(fields | overrides))


def decided(decision_no: str) -> dict[str, Any]:
    return {
        "source": common.VIOLATION_SOURCE_ON_SITE,
        "decision_no": decision_no,
        "decision_date": date_to_proto((datetime.now(UTC) - timedelta(days=1)).date()),
    }


async def test_a_decision_number_recorded_twice_is_a_conflict_and_writes_nothing(
    adjudication: AdjudicationServiceAsyncStub, plate: str, test_settings: Settings
) -> None:
    """R-ERR-1 / R-ADJ-7: the second violation with a used decision number gets 409-kind
    DECISION_NO_CONFLICT (not a 500), and nothing of the failed call is stored."""
    decision_no = f"500112{random.randrange(10**9, 10**10)}"
    first_id, second_id = f"tkt-{uuid.uuid4().hex}", f"tkt-{uuid.uuid4().hex}"
    first = await call(
        adjudication.RecordViolation,
        record_request(plate, first_id, **decided(decision_no)),
        timeout_s=5,
    )
    assert first.created and first.violation.decision_no == decision_no
    conninfo = test_settings.database_url
    outbox_before = await fetch_rows(conninfo, "SELECT count(*) FROM adjudication.outbox")

    with pytest.raises(DomainError) as err:
        await call(
            adjudication.RecordViolation,
            record_request(plate, second_id, **decided(decision_no)),
            timeout_s=5,
        )
    assert err.value.code == "DECISION_NO_CONFLICT"
    assert err.value.details == {"field": "decision_no"}
    # gRPC status of the conflict kind, not INTERNAL
    with pytest.raises(grpc.aio.AioRpcError) as raw:
        await adjudication.RecordViolation(
            record_request(plate, second_id, **decided(decision_no)), timeout=5
        )
    assert raw.value.code() != grpc.StatusCode.INTERNAL

    assert (
        await fetch_rows(
            conninfo,
            "SELECT 1 FROM adjudication.violations WHERE source_record_id = %s",
            second_id,
        )
        == []
    )
    assert await fetch_rows(conninfo, "SELECT count(*) FROM adjudication.outbox") == outbox_before
    holders = await fetch_rows(
        conninfo,
        "SELECT source_record_id FROM adjudication.violations WHERE decision_no = %s",
        decision_no,
    )
    assert holders == [(first_id,)]


async def test_sbx_zw_03_like_record_is_accepted_and_sent_to_the_counter(
    adjudication: AdjudicationServiceAsyncStub, plate: str
) -> None:
    """DOMAIN.md "Self-service handling": a non-site record needing the general procedure
    (500 yuan, no decision) is recorded unhandled, and GetHandlingEligibility refuses it
    online with route counter; an unknown id answers like an undetermined one."""
    recorded = await call(
        adjudication.RecordViolation,
        record_request(
            plate,
            f"SBX-ZW-03-{uuid.uuid4().hex}",
            violation_code="1636",
            fine_fen=50_000,
            procedure=common.PROCEDURE_GENERAL,
        ),
        timeout_s=5,
    )
    assert recorded.created
    assert recorded.violation.status == common.VIOLATION_STATUS_UNHANDLED
    assert recorded.violation.decision_no == ""
    open_case = await call(
        adjudication.RecordViolation,
        record_request(plate, f"cam-{uuid.uuid4().hex}"),
        timeout_s=5,
    )
    made_up = str(uuid.uuid4())
    ids = [recorded.violation.violation_id, open_case.violation.violation_id, made_up, "x"]
    answer = await call(
        adjudication.GetHandlingEligibility,
        pb.GetHandlingEligibilityRequest(violation_ids=ids),
        timeout_s=1,
    )
    by_id = {r.violation_id: r.online_handling for r in answer.results}
    assert list(by_id) == ids
    counter = by_id[recorded.violation.violation_id]
    assert counter.availability == common.OnlineHandling.AVAILABILITY_REFUSED
    assert (counter.route, counter.reason_code) == ("counter", "GENERAL_PROCEDURE_COUNTER_ONLY")
    assert by_id[made_up] == by_id[open_case.violation.violation_id] == by_id["x"]
    assert by_id[made_up].reason_code == "ELIGIBILITY_NOT_AVAILABLE"
