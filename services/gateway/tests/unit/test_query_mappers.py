"""Pure units of the violation-query mapping: VIN proofs, unset proto fields as null,
unknown free-text values, and the OpenAPI documentation of the new endpoints (no I/O)."""

from __future__ import annotations

import pytest
from cqcommon import identifiers as ids
from cqcommon.errors import DomainError
from cqcommon.settings import Settings
from cqgateway import mappers
from cqgateway.app import create_app
from cqgateway.schemas import LookupVehicleBody
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.query.v1 import query_pb2 as q

VIN = "LSVAU2A39N2183291"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("183291", "183291"),
        ("ab3291", "AB3291"),
        (" AB 3291\t", "AB3291"),
        ("ＡＢ３２９１", "AB3291"),  # full-width, as some keyboards type it
        (VIN, VIN),
        (VIN.lower(), VIN),
    ],
)
def test_vin_proof_is_the_last_6_or_the_full_vin_upper_cased(given: str, sent: str) -> None:
    assert ids.parse_vin_proof(given) == sent


@pytest.mark.parametrize(
    "given",
    ["", "18329", "1832911", "18329I", "18329O", "18329Q", "18-291", "渝83291", VIN[:-1],
     "LSVAU2A30N2183291", VIN + "1"],
)  # fmt: skip
def test_anything_else_is_invalid_vin_r_err_1(given: str) -> None:
    """R-ERR-1: VINs never contain I, O, Q; a full VIN must carry its check digit."""
    with pytest.raises(DomainError) as info:
        ids.parse_vin_proof(given)
    assert info.value.code == "INVALID_VIN"
    assert info.value.details == {"reason": "format"}  # never echoes the input


def test_lookup_vehicle_request_is_canonical() -> None:
    body = LookupVehicleBody.model_validate(
        {"plate_type": "52", "plate_number": "渝ad12345", "vin": "ab3291"}
    )
    req = mappers.lookup_vehicle_request(body, common.Caller(user_id="u", person_id="p"))
    assert req.plate_type == common.PLATE_TYPE_SMALL_NEV
    assert (req.plate_number, req.vin, req.caller.user_id) == ("渝AD12345", "AB3291", "u")


def test_unset_messages_and_strings_are_null() -> None:
    out = mappers.lookup_out(q.LookupResponse(vehicle=q.VehicleView(vehicle_id="v")))
    assert out.licence is None and out.next_cursor is None and out.violations == []
    assert out.vehicle is not None
    assert (out.vehicle.owner, out.vehicle.vin, out.vehicle.plate_type) == (None, None, None)
    licence = mappers.licence_out(q.LicenceView(licence_id="l", points=q.PointsDashboard()))
    assert licence.holder is None and licence.first_issued_on is None
    assert licence.points is not None and licence.points.cycle_end is None
    assert licence.points.limit_reason is None and licence.points.licence_status is None


def test_unknown_relation_maps_to_null_and_licence_status_passes_through() -> None:
    vehicle = mappers.vehicle_out(q.VehicleView(vehicle_id="v", relation="cousin"))
    assert vehicle.relation is None
    points = mappers.points_out(
        q.PointsDashboard(licence_status="expired", limit_reason="LICENCE_NOT_VALID")
    )
    assert (points.licence_status, points.limit_reason) == ("expired", "LICENCE_NOT_VALID")


def test_me_out_takes_the_user_id_from_the_token() -> None:
    out = mappers.me_out("2088000000000009", q.GetMeResponse())
    assert out.model_dump() == {
        "user_id": "2088000000000009",
        "person": None,
        "vehicles": [],
        "licence": None,
        "followed_vehicles": [],
        "followed_licences": [],
    }


def test_openapi_documents_the_query_endpoints_and_their_errors() -> None:
    spec = create_app(Settings(token_secret="unit-secret-" + "x" * 40)).openapi()
    paths = spec["paths"]
    operations = {
        ("/api/v1/me", "get"): [],
        ("/api/v1/violations/lookup/vehicle", "post"): ["INVALID_VIN", "INVALID_PLATE_NUMBER"],
        ("/api/v1/violations/lookup/licence", "post"): ["INVALID_ID_NUMBER", "INVALID_FILE_NO"],
        ("/api/v1/violations/{violation_id}", "get"): ["NOT_FOUND", "VALIDATION_FAILED"],
        ("/internal/v1/vehicles", "get"): ["INVALID_PLATE_NUMBER", "NOT_FOUND"],
        ("/internal/v1/licences", "get"): ["INVALID_ID_NUMBER", "NOT_FOUND"],
    }
    for (path, method), codes in operations.items():
        op = paths[path][method]
        assert op["summary"] and op["description"], path
        for code in codes:
            assert f"`{code}`" in op["description"], (path, code)
    for kind in ("vehicle", "licence"):
        responses = paths[f"/api/v1/violations/lookup/{kind}"]["post"]["responses"]
        assert {"200", "404", "429"} <= set(responses)
        assert "Retry-After" in responses["429"]["headers"]
        assert "`RATE_LIMITED`" in paths[f"/api/v1/violations/lookup/{kind}"]["post"]["description"]
    schemas = spec["components"]["schemas"]
    assert set(schemas["LookupOut"]["properties"]) == {
        "vehicle",
        "licence",
        "violations",
        "next_cursor",
    }
    assert set(schemas["StaffLookupOut"]["properties"]) == set(schemas["LookupOut"]["properties"])
    assert "online_handling" in schemas["ViolationOut"]["properties"]
