"""HTTP request and response bodies (the shapes in /openapi.json).

Request models are strict: unknown fields (``extra="forbid"``) and wrong JSON types
(a number where a string belongs, ``true`` for an integer) are refused with 422
``VALIDATION_FAILED``. The *format* of identifiers (plate numbers, licence numbers,
violation codes, decision numbers) is checked afterwards by ``cqgateway.mappers`` with
``cqcommon.identifiers`` and answers 400 with that identifier's own code
(``INVALID_PLATE_NUMBER`` …), so a client can tell a structural mistake from a bad value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

PlateTypeCode = Literal["01", "02", "51", "52", "07"]
ViolationSourceName = Literal["non_site", "on_site"]
ProcedureName = Literal["simple", "general"]
ViolationStatusName = Literal["unhandled", "handled_unpaid", "paid"]
StaffRoleName = Literal["clerk", "supervisor"]

Str = Annotated[str, Field(strict=True)]


class StrictRequest(BaseModel):
    """Base of every request body: no unknown fields, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


def _iso_string(value: Any) -> Any:
    # Strict models get Python objects from FastAPI (parsed JSON), where strict mode would
    # refuse even a well-formed ISO string; so we accept strings only, and parse them here.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string")
    return value


# -- auth -------------------------------------------------------------------------------
class AlipayLoginRequest(StrictRequest):
    auth_code: Str = Field(
        min_length=1,
        max_length=256,
        description="The mini-program's my.getAuthCode result; `sandbox:<alipay_user_id>` in sandbox mode.",
    )


class TokenResponse(BaseModel):
    token: str = Field(description="Bearer token for `Authorization: Bearer <token>`.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_at: datetime = Field(description="When the token expires (ISO 8601, UTC).")


class StaffLoginRequest(StrictRequest):
    username: Str = Field(min_length=1, max_length=64)
    password: Str = Field(min_length=1, max_length=256)


class StaffTokenResponse(TokenResponse):
    staff_id: str
    role: StaffRoleName


# -- violations (counter: record) ---------------------------------------------------------
class RecordViolationBody(StrictRequest):
    """A violation from an enforcement system; idempotent by (source_system, source_record_id)."""

    source_system: Str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    source_record_id: Str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    plate_type: PlateTypeCode
    plate_number: Str = Field(min_length=1, max_length=16, description="e.g. 渝A12345, 渝AD12345")
    licence_no: Str | None = Field(
        None,
        max_length=32,
        description="The driver's licence number (18-char ID number), if known.",
    )
    violation_code: Str = Field(min_length=1, max_length=8, description="4 or 5 digits.")
    # strict=False on the two dates only: strict mode refuses even ISO strings for dates
    # when validating parsed JSON; the "before" validators still refuse numbers.
    occurred_at: AwareDatetime = Field(strict=False, description="ISO 8601 with an offset.")
    place: Str = Field(min_length=1, max_length=200)
    fine_fen: int = Field(gt=0, le=100_000_000, description="Fine in fen (1 yuan = 100 fen).")
    source: ViolationSourceName
    procedure: ProcedureName
    decision_no: Str | None = Field(None, max_length=32, description="16 digits, when decided.")
    decision_date: date | None = Field(None, strict=False, description="YYYY-MM-DD, when decided.")

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _occurred_is_string(cls, value: Any) -> Any:
        return _iso_string(value)

    @field_validator("decision_date", mode="before")
    @classmethod
    def _date_is_string(cls, value: Any) -> Any:
        return value if value is None else _iso_string(value)


class ViolationRecord(BaseModel):
    """A violation as adjudication recorded it."""

    violation_id: str
    source_system: str
    source_record_id: str
    vehicle_id: str | None
    plate_type: PlateTypeCode | None
    plate_number: str
    licence_id: str | None
    violation_code: str
    description_zh: str
    occurred_at: datetime | None
    place: str
    fine_fen: int
    points: int
    source: ViolationSourceName | None
    procedure: ProcedureName | None
    status: ViolationStatusName | None
    decision_no: str | None
    decision_date: date | None
    disputed: bool


# -- violations (mini-program: list) ------------------------------------------------------
class OnlineHandlingOut(BaseModel):
    """R-Q-3: may this caller handle the violation online, and if not, why."""

    allowed: bool | None = Field(description="null when eligibility could not be determined.")
    availability: Literal["allowed", "refused", "unknown"]
    route: str | None
    reason_code: str | None
    reason: str | None = Field(description="The reason in Chinese.")
    reason_en: str | None


class ViolationOut(BaseModel):
    """A violation as the caller may see it (R-Q-3)."""

    violation_id: str
    vehicle_id: str | None
    plate_type: PlateTypeCode | None
    plate_number: str
    licence_id: str | None
    occurred_at: datetime | None
    place: str
    violation_code: str
    description_zh: str
    fine_fen: int
    points: int
    source: ViolationSourceName | None
    procedure: ProcedureName | None
    status: ViolationStatusName | None
    decision_no: str | None
    decision_date: date | None
    due_date: date | None
    late_fee_fen: int
    amount_due_fen: int
    disputed: bool
    online_handling: OnlineHandlingOut | None


class ViolationListOut(BaseModel):
    violations: list[ViolationOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


# -- audit ------------------------------------------------------------------------------
class AuditEntryOut(BaseModel):
    audit_id: int
    occurred_at: datetime
    staff_id: str | None
    role: str | None
    method: str
    path: str
    query: str
    subjects: list[str]
    status_code: int
    trace_id: str | None


class AuditListOut(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None


# -- health -----------------------------------------------------------------------------
class CheckOut(BaseModel):
    ok: bool
    detail: str | None = None


class ReadinessOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckOut]
    failed: list[str] = Field(default_factory=list)


class LivenessOut(BaseModel):
    status: Literal["ok"] = "ok"
