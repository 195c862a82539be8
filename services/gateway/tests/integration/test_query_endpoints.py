"""The violation-query endpoints of the gateway (``/api/v1/me``, the proof lookups, one
violation's detail, the counter reads) against real PostgreSQL with ``FakeServices``
(conftest) scripted as the QueryService: these tests prove the HTTP ↔ gRPC mapping, the
input checks made before any call, the pass-through of the service's errors and the
audit of counter reads. The query rules themselves are the query service's tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cqcommon.errors import NOT_FOUND, RATE_LIMITED, DomainError
from cqdev.testing import error_body, traced
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as q
from google.protobuf.timestamp_pb2 import Timestamp

pytestmark = pytest.mark.integration

#: The conftest's ``user_headers`` (a sandbox login as a person) and ``audit_row`` fixtures.
UserHeaders = Callable[..., Awaitable[dict[str, str]]]
AuditRow = Callable[[str], Awaitable[dict[str, Any]]]

VIN = "LSVAU2A39N2183291"  # check digit correct
LICENCE_NO = "500103199001011232"
FILE_NO = "500100123456"


# -- helpers -----------------------------------------------------------------------------------
def ts(year: int, month: int, day: int, hour: int, minute: int) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(datetime(year, month, day, hour, minute, tzinfo=UTC))
    return out


def masked_owner() -> q.PersonView:
    return q.PersonView(
        person_id="person-7", name="张*", id_number="5001**********1234", phone="139****5678"
    )


def vehicle_view(**overrides: Any) -> q.VehicleView:
    values: dict[str, Any] = {
        "vehicle_id": "veh-1",
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "plate_number": "渝A12345",
        "vin": "183291",
        "owner": masked_owner(),
        "relation": "proven",
        "unhandled_count": 2,
        "unpaid_count": 1,
    }
    return q.VehicleView(**(values | overrides))


VEHICLE_JSON: dict[str, Any] = {
    "vehicle_id": "veh-1",
    "plate_type": "02",
    "plate_number": "渝A12345",
    "vin": "183291",
    "owner": {
        "person_id": "person-7",
        "name": "张*",
        "id_number": "5001**********1234",
        "phone": "139****5678",
    },
    "relation": "proven",
    "unhandled_count": 2,
    "unpaid_count": 1,
}


def licence_view(**overrides: Any) -> q.LicenceView:
    values: dict[str, Any] = {
        "licence_id": "lic-1",
        "licence_no": "5001**********1232",
        "file_no": FILE_NO,
        "licence_class": "C1",
        "first_issued_on": common.Date(year=2015, month=6, day=20),
        "holder": q.PersonView(person_id="person-8", name="李*"),
        "relation": "followed",
        "points": q.PointsDashboard(
            points=12,
            points_limit=12,
            cycle_start=common.Date(year=2024, month=6, day=20),
            cycle_end=common.Date(year=2025, month=6, day=19),
            may_drive=False,
            licence_status="valid",
            limit_reason="POINTS_LIMIT_REACHED",
            limit_reason_zh="记分已满 12 分",
            limit_reason_en="The points limit has been reached",
        ),
    }
    return q.LicenceView(**(values | overrides))


LICENCE_JSON: dict[str, Any] = {
    "licence_id": "lic-1",
    "licence_no": "5001**********1232",
    "file_no": FILE_NO,
    "licence_class": "C1",
    "first_issued_on": "2015-06-20",
    "holder": {"person_id": "person-8", "name": "李*", "id_number": None, "phone": None},
    "relation": "followed",
    "points": {
        "points": 12,
        "points_limit": 12,
        "cycle_start": "2024-06-20",
        "cycle_end": "2025-06-19",
        "may_drive": False,
        "licence_status": "valid",
        "limit_reason": "POINTS_LIMIT_REACHED",
        "limit_reason_zh": "记分已满 12 分",
        "limit_reason_en": "The points limit has been reached",
    },
}


def violation_view(**overrides: Any) -> q.ViolationView:
    values: dict[str, Any] = {
        "violation_id": "vio-1",
        "vehicle_id": "veh-1",
        "plate_type": common.PLATE_TYPE_SMALL_CAR,
        "plate_number": "渝A12345",
        "licence_id": "lic-9",
        "occurred_at": ts(2025, 3, 1, 0, 30),
        "place": "渝中区解放碑",
        "violation_code": "1039",
        "description_zh": "机动车违反规定停放",
        "fine_fen": 20000,
        "points": 0,
        "source": common.VIOLATION_SOURCE_NON_SITE,
        "procedure": common.PROCEDURE_SIMPLE,
        "status": common.VIOLATION_STATUS_UNHANDLED,
        "amount_due_fen": 20000,
    }
    return q.ViolationView(**(values | overrides))


def fail_with(error: DomainError) -> Any:
    def answer(_req: Any) -> Any:
        raise error

    return answer


# -- GET /api/v1/me ------------------------------------------------------------------------------
async def test_me_maps_person_vehicles_licence_points_and_follows_r_q_4_r_x_1(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-Q-4, R-X-1: the service's (masked where needed) views and the points dashboard reach
    the client unchanged; unset strings and messages become null."""
    headers = await user_headers(person_id="person-1")
    me = q.PersonView(person_id="person-1", name="王伟", id_number=LICENCE_NO, phone="13900005678")
    own_vehicle = vehicle_view(
        vehicle_id="veh-own", vin=VIN, owner=me, relation="own", unhandled_count=0
    )
    followed = vehicle_view()
    own_licence = licence_view(
        licence_id="lic-own",
        licence_no=LICENCE_NO,
        holder=me,
        relation="own",
        points=q.PointsDashboard(
            points=3,
            points_limit=12,
            cycle_start=common.Date(year=2024, month=6, day=20),
            cycle_end=common.Date(year=2025, month=6, day=19),
            may_drive=True,
            licence_status="valid",
        ),
    )
    fake.script(
        "GetMe",
        lambda req: q.GetMeResponse(
            person=me,
            vehicles=[own_vehicle],
            licence=own_licence,
            followed_vehicles=[followed],
            followed_licences=[licence_view(file_no="", licence_class="", points=None)],
        ),
    )
    r = await client.get("/api/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    caller = fake.requests["GetMe"][0].caller
    assert (caller.user_id, caller.person_id) == ("2088000000000001", "person-1")
    me_json = {
        "person_id": "person-1",
        "name": "王伟",
        "id_number": LICENCE_NO,
        "phone": "13900005678",
    }
    assert r.json() == {
        "user_id": "2088000000000001",
        "person": me_json,
        "vehicles": [
            VEHICLE_JSON
            | {"vehicle_id": "veh-own", "vin": VIN, "owner": me_json, "relation": "own"}
            | {"unhandled_count": 0}
        ],
        "licence": LICENCE_JSON
        | {
            "licence_id": "lic-own",
            "licence_no": LICENCE_NO,
            "holder": me_json,
            "relation": "own",
            "points": {
                "points": 3,
                "points_limit": 12,
                "cycle_start": "2024-06-20",
                "cycle_end": "2025-06-19",
                "may_drive": True,
                "licence_status": "valid",
                "limit_reason": None,
                "limit_reason_zh": None,
                "limit_reason_en": None,
            },
        },
        "followed_vehicles": [VEHICLE_JSON],
        "followed_licences": [
            LICENCE_JSON | {"file_no": None, "licence_class": None, "points": None}
        ],
    }


async def test_me_of_a_user_with_no_registry_person_is_null_and_empty_r_usr_1(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-USR-1: a user who is not in the registry logs in and owns nothing."""
    headers = await user_headers(person_id="")
    fake.script("GetMe", lambda req: q.GetMeResponse())
    r = await client.get("/api/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    assert fake.requests["GetMe"][0].caller.person_id == ""
    assert r.json() == {
        "user_id": "2088000000000001",
        "person": None,
        "vehicles": [],
        "licence": None,
        "followed_vehicles": [],
        "followed_licences": [],
    }


async def test_me_needs_a_user_token(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str]
) -> None:
    assert (await client.get("/api/v1/me")).status_code == 401
    r = await client.get("/api/v1/me", headers=clerk_headers)
    assert r.status_code == 401
    assert error_body(r)["details"]["reason"] == "wrong_token_type"
    assert "GetMe" not in fake.requests


# -- POST /api/v1/violations/lookup/vehicle ---------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "sent"),
    [("ab3291", "AB3291"), (" ab 3291 ", "AB3291"), (VIN.lower(), VIN)],
    ids=["last-6", "last-6-spaced", "full-vin"],
)
async def test_lookup_vehicle_sends_canonical_plate_and_vin_and_maps_the_answer_r_q_1(
    client: httpx.AsyncClient, fake: Any, given: str, sent: str, user_headers: UserHeaders
) -> None:
    """R-Q-1: the proof reaches the service in canonical form; the answer is mapped whole."""
    headers = await user_headers()
    fake.script(
        "LookupVehicle",
        lambda req: q.LookupResponse(
            vehicle=vehicle_view(), violations=[violation_view()], next_cursor="c2"
        ),
    )
    r = await client.post(
        "/api/v1/violations/lookup/vehicle",
        json={"plate_type": "02", "plate_number": " 渝a·12345 ", "vin": given},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    req = fake.requests["LookupVehicle"][0]
    assert req.plate_type == common.PLATE_TYPE_SMALL_CAR
    assert (req.plate_number, req.vin) == ("渝A12345", sent)
    assert (req.caller.user_id, req.caller.person_id) == ("2088000000000001", "p-1")
    body = r.json()
    assert body["vehicle"] == VEHICLE_JSON
    assert body["licence"] is None
    assert body["next_cursor"] == "c2"
    [v] = body["violations"]
    assert v["violation_id"] == "vio-1" and v["occurred_at"] == "2025-03-01T08:30:00+08:00"
    assert (v["amount_due_fen"], v["late_fee_fen"], v["online_handling"]) == (20000, 0, None)


async def test_lookup_licence_sends_canonical_numbers_and_maps_the_answer_r_q_1(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-Q-1, R-X-1: name + licence no + file no; the licence comes back with its points."""
    headers = await user_headers()
    fake.script(
        "LookupLicence",
        lambda req: q.LookupResponse(licence=licence_view(relation="proven")),
    )
    r = await client.post(
        "/api/v1/violations/lookup/licence",
        json={
            "name": " 李娜 ",
            "licence_no": "11010519491231002x",
            "file_no": "５００１００１２３４５６",
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    req = fake.requests["LookupLicence"][0]
    assert (req.name, req.licence_no, req.file_no) == ("李娜", "11010519491231002X", FILE_NO)
    assert req.caller.user_id == "2088000000000001"
    assert r.json() == {
        "vehicle": None,
        "licence": LICENCE_JSON | {"relation": "proven"},
        "violations": [],
        "next_cursor": None,
    }


VEHICLE_BODY: dict[str, Any] = {"plate_type": "02", "plate_number": "渝A12345", "vin": "183291"}
LICENCE_BODY: dict[str, Any] = {"name": "李娜", "licence_no": LICENCE_NO, "file_no": FILE_NO}


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("vehicle", VEHICLE_BODY | {"plate_number": "ABC"}, 400, "INVALID_PLATE_NUMBER"),
        ("vehicle", VEHICLE_BODY | {"plate_type": "52"}, 400, "INVALID_PLATE_NUMBER"),
        ("vehicle", VEHICLE_BODY | {"vin": "18329"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"vin": "1832911"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"vin": "18329I"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"vin": "18329o"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"vin": "18329Q"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"vin": "18-291"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"vin": "LSVAU2A30N2183291"}, 400, "INVALID_VIN"),
        ("vehicle", VEHICLE_BODY | {"plate_type": "03"}, 422, "VALIDATION_FAILED"),
        ("vehicle", VEHICLE_BODY | {"vin": 183291}, 422, "VALIDATION_FAILED"),
        ("vehicle", VEHICLE_BODY | {"vin": ""}, 422, "VALIDATION_FAILED"),
        ("vehicle", VEHICLE_BODY | {"owner": "me"}, 422, "VALIDATION_FAILED"),
        ("vehicle", {"plate_type": "02", "plate_number": "渝A12345"}, 422, "VALIDATION_FAILED"),
        ("licence", LICENCE_BODY | {"licence_no": "123"}, 400, "INVALID_ID_NUMBER"),
        ("licence", LICENCE_BODY | {"licence_no": "500103199001011233"}, 400, "INVALID_ID_NUMBER"),
        ("licence", LICENCE_BODY | {"file_no": "50010012345"}, 400, "INVALID_FILE_NO"),
        ("licence", LICENCE_BODY | {"file_no": "50010012345a"}, 400, "INVALID_FILE_NO"),
        ("licence", LICENCE_BODY | {"name": " "}, 422, "VALIDATION_FAILED"),
        ("licence", LICENCE_BODY | {"vin": "183291"}, 422, "VALIDATION_FAILED"),
        ("licence", {"name": "李娜", "licence_no": LICENCE_NO}, 422, "VALIDATION_FAILED"),
    ],
)
async def test_lookup_bad_input_is_refused_before_any_call_r_err_1(
    client: httpx.AsyncClient,
    fake: Any,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
    user_headers: UserHeaders,
) -> None:
    """R-ERR-1: a malformed plate, VIN, licence or file number answers 400 with its own code;
    structural mistakes (unknown or missing fields, wrong types) 422; nothing is called."""
    headers = await user_headers()
    r = await client.post(f"/api/v1/violations/lookup/{path}", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert error_body(r)["code"] == code
    assert "LookupVehicle" not in fake.requests and "LookupLicence" not in fake.requests


@pytest.mark.parametrize("path", ["vehicle", "licence"])
async def test_lookup_as_form_data_is_415_and_without_token_401(
    client: httpx.AsyncClient, fake: Any, path: str, user_headers: UserHeaders
) -> None:
    """R-ERR-1: the lookups take JSON only."""
    headers = await user_headers()
    r = await client.post(
        f"/api/v1/violations/lookup/{path}",
        content=b"plate_type=02",
        headers=headers | {"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert error_body(r)["code"] == "UNSUPPORTED_MEDIA_TYPE"
    body = VEHICLE_BODY if path == "vehicle" else LICENCE_BODY
    r = await client.post(f"/api/v1/violations/lookup/{path}", json=body)
    assert r.status_code == 401
    assert "LookupVehicle" not in fake.requests and "LookupLicence" not in fake.requests


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [("vehicle", "LookupVehicle", VEHICLE_BODY), ("licence", "LookupLicence", LICENCE_BODY)],
)
async def test_lookup_no_match_is_404_r_q_1(
    client: httpx.AsyncClient,
    fake: Any,
    path: str,
    method: str,
    body: dict[str, Any],
    user_headers: UserHeaders,
) -> None:
    """R-Q-1: no match or a wrong proof is the service's 404, passed through as is."""
    headers = await user_headers()
    fake.script(method, fail_with(DomainError(NOT_FOUND)))
    r = await client.post(f"/api/v1/violations/lookup/{path}", json=body, headers=headers)
    assert r.status_code == 404
    assert error_body(r)["code"] == "NOT_FOUND"
    assert "retry-after" not in r.headers
    assert len(fake.requests[method]) == 1


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [("vehicle", "LookupVehicle", VEHICLE_BODY), ("licence", "LookupLicence", LICENCE_BODY)],
)
async def test_lookup_rate_limit_is_429_with_retry_after_r_q_1(
    client: httpx.AsyncClient,
    fake: Any,
    path: str,
    method: str,
    body: dict[str, Any],
    user_headers: UserHeaders,
) -> None:
    """R-Q-1 (lookups are rate-limited per user): the service's 429 keeps its code and
    details, and ``details.retry_after_s`` becomes a ``Retry-After`` header."""
    headers = await user_headers()
    fake.script(method, fail_with(DomainError(RATE_LIMITED, details={"retry_after_s": 41.5})))
    r = await client.post(f"/api/v1/violations/lookup/{path}", json=body, headers=headers)
    assert r.status_code == 429
    error = error_body(r)
    assert error["code"] == "RATE_LIMITED"
    assert error["message_zh"] and error["message_en"]
    assert error["details"] == {"retry_after_s": 41.5}
    assert r.headers["retry-after"] == "42"


# -- GET /api/v1/violations/{violation_id} ---------------------------------------------------------
async def test_violation_detail_maps_amount_due_and_allowed_online_handling_r_q_3(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-Q-3: the detail with decision, amount due (fine + late fee) and online handling."""
    headers = await user_headers()
    view = violation_view(
        violation_id="vio-42",
        licence_id="",
        status=common.VIOLATION_STATUS_HANDLED_UNPAID,
        decision_no="5001031234567890",
        decision_date=common.Date(year=2025, month=3, day=5),
        due_date=common.Date(year=2025, month=3, day=20),
        late_fee_fen=1200,
        amount_due_fen=21200,
        online_handling=common.OnlineHandling(
            availability=common.OnlineHandling.AVAILABILITY_ALLOWED, route="self"
        ),
    )
    fake.script("GetViolation", lambda req: view)
    r = await client.get("/api/v1/violations/vio-42", headers=headers)
    assert r.status_code == 200, r.text
    req = fake.requests["GetViolation"][0]
    assert req.violation_id == "vio-42"
    assert (req.caller.user_id, req.caller.person_id) == ("2088000000000001", "p-1")
    assert r.json() == {
        "violation_id": "vio-42",
        "vehicle_id": "veh-1",
        "plate_type": "02",
        "plate_number": "渝A12345",
        "licence_id": None,
        "occurred_at": "2025-03-01T08:30:00+08:00",
        "place": "渝中区解放碑",
        "violation_code": "1039",
        "description_zh": "机动车违反规定停放",
        "fine_fen": 20000,
        "points": 0,
        "source": "non_site",
        "procedure": "simple",
        "status": "handled_unpaid",
        "decision_no": "5001031234567890",
        "decision_date": "2025-03-05",
        "due_date": "2025-03-20",
        "late_fee_fen": 1200,
        "amount_due_fen": 21200,
        "disputed": False,
        "online_handling": {
            "allowed": True,
            "availability": "allowed",
            "route": "self",
            "reason_code": None,
            "reason": None,
            "reason_en": None,
            "reasons": [],
        },
    }


async def test_violation_detail_with_unknown_eligibility_r_q_3(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-Q-3: when eligibility cannot be determined the detail still answers, with
    ``allowed`` null, availability ``unknown`` and the reason."""
    headers = await user_headers()
    view = violation_view(
        online_handling=common.OnlineHandling(
            availability=common.OnlineHandling.AVAILABILITY_UNKNOWN,
            reason_code="ELIGIBILITY_NOT_AVAILABLE",
            reason_zh="暂时无法判断能否网上处理，请稍后再试。",
            reason_en="Online handling cannot be checked right now; try again later.",
        )
    )
    fake.script("GetViolation", lambda req: view)
    r = await client.get("/api/v1/violations/vio-1", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["online_handling"] == {
        "allowed": None,
        "availability": "unknown",
        "route": None,
        "reason_code": "ELIGIBILITY_NOT_AVAILABLE",
        "reason": "暂时无法判断能否网上处理，请稍后再试。",
        "reason_en": "Online handling cannot be checked right now; try again later.",
        "reasons": [],
    }
    assert r.json()["status"] == "unhandled" and r.json()["amount_due_fen"] == 20000


async def test_violation_detail_not_visible_is_404_r_q_1(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    """R-Q-1: a guessed id is the service's 404, never someone else's data."""
    headers = await user_headers()
    fake.script("GetViolation", fail_with(DomainError(NOT_FOUND)))
    r = await client.get("/api/v1/violations/vio-someone-else", headers=headers)
    assert r.status_code == 404
    assert error_body(r)["code"] == "NOT_FOUND"


@pytest.mark.parametrize("bad", ["vio.1", "vio%201", "x" * 65, "%E6%B8%9D"])
async def test_violation_detail_malformed_id_is_422_r_err_1(
    client: httpx.AsyncClient, fake: Any, bad: str, user_headers: UserHeaders
) -> None:
    """R-ERR-1: the id is checked like the list's ``vehicle_id``: 422 before any call."""
    headers = await user_headers()
    r = await client.get(f"/api/v1/violations/{bad}", headers=headers)
    assert r.status_code == 422, r.text
    assert error_body(r)["code"] == "VALIDATION_FAILED"
    assert "GetViolation" not in fake.requests


async def test_detail_route_shadows_neither_the_list_nor_the_lookups(
    client: httpx.AsyncClient, fake: Any, user_headers: UserHeaders
) -> None:
    headers = await user_headers()
    fake.script("ListViolations", lambda req: q.ListViolationsResponse())
    r = await client.get("/api/v1/violations", params={"vehicle_id": "veh-1"}, headers=headers)
    assert r.status_code == 200 and len(fake.requests["ListViolations"]) == 1
    r = await client.get("/api/v1/violations/lookup/vehicle", headers=headers)
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    assert "GetViolation" not in fake.requests


# -- GET /internal/v1/vehicles, /internal/v1/licences -------------------------------------------
@pytest.mark.parametrize("role", ["clerk", "supervisor"])
async def test_counter_vehicle_read_is_unmasked_and_audited_r_usr_2(
    client: httpx.AsyncClient,
    fake: Any,
    clerk_headers: dict[str, str],
    supervisor_headers: dict[str, str],
    role: str,
    audit_row: AuditRow,
) -> None:
    """R-USR-2: any staff role reads the full record; the audit row names the plate, the
    vehicle, the owner's person id and the licences its violations name."""
    staff = clerk_headers if role == "clerk" else supervisor_headers
    headers, trace_id = traced(staff)
    owner = q.PersonView(
        person_id="person-7", name="张伟", id_number=LICENCE_NO, phone="13900005678"
    )
    fake.script(
        "StaffGetVehicle",
        lambda req: q.LookupResponse(
            vehicle=vehicle_view(vin=VIN, owner=owner, relation="staff"),
            violations=[violation_view(), violation_view(violation_id="vio-2", licence_id="")],
            next_cursor="c2",
        ),
    )
    r = await client.get(
        "/internal/v1/vehicles",
        params={"plate_type": "02", "plate_number": "渝a12345", "cursor": "c1", "limit": "5"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    req = fake.requests["StaffGetVehicle"][0]
    assert req.plate_type == common.PLATE_TYPE_SMALL_CAR and req.plate_number == "渝A12345"
    assert (req.page.page_size, req.page.cursor) == (5, "c1")
    assert req.caller.staff_role == role and req.caller.user_id == ""
    body = r.json()
    assert body["vehicle"] == VEHICLE_JSON | {
        "vin": VIN,
        "relation": "staff",
        "owner": {
            "person_id": "person-7",
            "name": "张伟",
            "id_number": LICENCE_NO,
            "phone": "13900005678",
        },
    }
    assert body["licence"] is None and body["next_cursor"] == "c2"
    assert [v["violation_id"] for v in body["violations"]] == ["vio-1", "vio-2"]
    row = await audit_row(trace_id)
    assert row["status_code"] == 200 and row["path"] == "/internal/v1/vehicles"
    assert row["staff_id"] == req.caller.staff_id
    assert row["subjects"] == [
        "plate:02:渝A12345",
        "vehicle:veh-1",
        "person:person-7",
        "licence:lic-9",
    ]


async def test_counter_licence_read_is_audited_with_licence_and_holder_r_usr_2(
    client: httpx.AsyncClient,
    fake: Any,
    clerk_headers: dict[str, str],
    supervisor_headers: dict[str, str],
    audit_row: AuditRow,
) -> None:
    """R-USR-2, R-X-1: the licence with its points; audited with the canonical licence
    number, the licence, the holder's person id and the vehicles its violations name."""
    headers, trace_id = traced(clerk_headers)
    fake.script(
        "StaffGetLicence",
        lambda req: q.LookupResponse(
            licence=licence_view(relation="staff"),
            violations=[violation_view(vehicle_id="veh-3", licence_id="lic-1")],
        ),
    )
    r = await client.get(
        "/internal/v1/licences", params={"licence_no": "11010519491231002x"}, headers=headers
    )
    assert r.status_code == 200, r.text
    req = fake.requests["StaffGetLicence"][0]
    assert req.licence_no == "11010519491231002X"
    assert (req.page.page_size, req.page.cursor) == (20, "")  # the defaults
    assert r.json()["licence"] == LICENCE_JSON | {"relation": "staff"}
    assert r.json()["vehicle"] is None and r.json()["next_cursor"] is None
    row = await audit_row(trace_id)
    assert row["status_code"] == 200 and row["staff_id"] == "clerk01"
    assert row["subjects"] == [
        "licence_no:11010519491231002X",
        "licence:lic-1",
        "person:person-8",
        "vehicle:veh-3",
    ]
    # A supervisor finds the read by the person whose data it showed.
    r = await client.get(
        "/internal/v1/audit", params={"subject": "person:person-8"}, headers=supervisor_headers
    )
    assert trace_id in [e["trace_id"] for e in r.json()["entries"]]


@pytest.mark.parametrize(
    ("path", "params", "method", "code"),
    [
        ("vehicles", {"plate_type": "02", "plate_number": "ABC"}, "StaffGetVehicle",
         "INVALID_PLATE_NUMBER"),
        ("vehicles", {"plate_type": "51", "plate_number": "渝A12345"}, "StaffGetVehicle",
         "INVALID_PLATE_NUMBER"),
        ("licences", {"licence_no": "500103199001011233"}, "StaffGetLicence",
         "INVALID_ID_NUMBER"),
    ],
)  # fmt: skip
async def test_counter_bad_identifier_is_400_and_audited_r_usr_2(
    client: httpx.AsyncClient,
    fake: Any,
    clerk_headers: dict[str, str],
    path: str,
    params: dict[str, str],
    method: str,
    code: str,
    audit_row: AuditRow,
) -> None:
    """R-USR-2, R-ERR-1: a refused counter read is still audited (who, what was asked)."""
    headers, trace_id = traced(clerk_headers)
    r = await client.get(f"/internal/v1/{path}", params=params, headers=headers)
    assert r.status_code == 400, r.text
    assert error_body(r)["code"] == code
    assert method not in fake.requests
    row = await audit_row(trace_id)
    assert (row["status_code"], row["staff_id"], row["role"]) == (400, "clerk01", "clerk")
    assert row["path"] == f"/internal/v1/{path}" and row["query"]


@pytest.mark.parametrize(
    "params",
    [
        {"plate_type": "03", "plate_number": "渝A12345"},
        {"plate_type": "02"},
        {"plate_type": "02", "plate_number": "渝A12345", "limit": "0"},
        {"plate_type": "02", "plate_number": "渝A12345", "limit": "101"},
    ],
)
async def test_counter_vehicle_query_validation_is_422_r_err_1(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], params: dict[str, str]
) -> None:
    """R-ERR-1: structural mistakes in the query string are 422 before any call."""
    r = await client.get("/internal/v1/vehicles", params=params, headers=clerk_headers)
    assert r.status_code == 422, r.text
    assert error_body(r)["code"] == "VALIDATION_FAILED"
    assert "StaffGetVehicle" not in fake.requests


async def test_counter_not_found_is_404_and_audited_with_the_plate_r_usr_2(
    client: httpx.AsyncClient, fake: Any, clerk_headers: dict[str, str], audit_row: AuditRow
) -> None:
    """R-USR-2: even a miss is audited with what was asked for."""
    headers, trace_id = traced(clerk_headers)
    fake.script("StaffGetVehicle", fail_with(DomainError(NOT_FOUND)))
    r = await client.get(
        "/internal/v1/vehicles",
        params={"plate_type": "52", "plate_number": "渝AD12345"},
        headers=headers,
    )
    assert r.status_code == 404
    row = await audit_row(trace_id)
    assert row["status_code"] == 404 and row["subjects"] == ["plate:52:渝AD12345"]


@pytest.mark.parametrize(
    ("path", "params", "method"),
    [
        ("vehicles", {"plate_type": "02", "plate_number": "渝A12345"}, "StaffGetVehicle"),
        ("licences", {"licence_no": LICENCE_NO}, "StaffGetLicence"),
    ],
)
async def test_counter_reads_refuse_user_tokens_and_anonymous_calls(
    client: httpx.AsyncClient,
    fake: Any,
    path: str,
    params: dict[str, str],
    method: str,
    user_headers: UserHeaders,
) -> None:
    headers = await user_headers()
    r = await client.get(f"/internal/v1/{path}", params=params, headers=headers)
    assert r.status_code == 401
    assert error_body(r)["details"]["reason"] == "wrong_token_type"
    r = await client.get(f"/internal/v1/{path}", params=params)
    assert r.status_code == 401 and error_body(r)["code"] == "UNAUTHENTICATED"
    assert method not in fake.requests
