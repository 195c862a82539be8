"""HTTP request and response bodies (the shapes in /openapi.json).

Request models are strict: unknown fields (``extra="forbid"``) and wrong JSON types
(a number where a string belongs, ``true`` for an integer) are refused with 422
``VALIDATION_FAILED``. The *format* of identifiers (plate numbers, licence numbers,
violation codes, decision numbers) is checked afterwards by ``cqgateway.mappers`` with
``cqcommon.identifiers`` and answers 400 with that identifier's own code
(``INVALID_PLATE_NUMBER`` …), so a client can tell a structural mistake from a bad value.

Before any of that, every string in a body (keys too, nested ones too) passes the one
character check, ``cqcommon.text`` (400 ``INVALID_CHARACTERS``): ``StrictRequest`` does it
for every request model, so no route can forget it. A free-text field that may hold line
breaks names itself in its model's ``free_text_fields``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from cqcommon.text import CLEAN_TEXT_PATTERN, check_strings
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

PlateTypeCode = Literal["01", "02", "51", "52", "07"]
ViolationSourceName = Literal["non_site", "on_site"]
ProcedureName = Literal["simple", "general"]
ViolationStatusName = Literal["unhandled", "handled_unpaid", "paid"]
StaffRoleName = Literal["clerk", "supervisor"]
RelationName = Literal["own", "followed", "proven", "staff"]

Str = Annotated[str, Field(strict=True)]


def _document_clean_text(schema: dict[str, Any], model: type[Any]) -> None:
    """State the character rule in /openapi.json: every plain string property of a request
    body (no pattern, format or enum of its own) gets ``CLEAN_TEXT_PATTERN``, so clients and
    test generators know what ``INVALID_CHARACTERS`` refuses."""
    free_text: frozenset[str] = getattr(model, "free_text_fields", frozenset())
    for name, prop in schema.get("properties", {}).items():
        if name in free_text:
            continue
        for variant in [prop, *prop.get("anyOf", [])]:
            plain = not {"pattern", "format", "enum", "const"} & set(variant)
            if variant.get("type") == "string" and plain:
                variant["pattern"] = CLEAN_TEXT_PATTERN


class StrictRequest(BaseModel):
    """Base of every request body: clean strings, no unknown fields, no type coercion."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        str_strip_whitespace=True,
        json_schema_extra=_document_clean_text,
    )

    #: Top-level fields that are free text and may contain LF/CR (none may contain other
    #: controls, bidi or zero-width characters).
    free_text_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_forbidden_characters(cls, data: Any) -> Any:
        # Runs on the parsed JSON before any field is validated, so a NUL or a bidi override
        # is refused with its own code even in a field that would fail for another reason.
        # DomainError is not a ValueError: pydantic lets it through to the error handler.
        if isinstance(data, Mapping):
            for key, value in data.items():
                # The key first, named only as "body": details must not echo the bad key.
                check_strings(key, field="body")
                path = f"body.{key}"
                free = [path] if key in cls.free_text_fields else []
                check_strings(value, field=path, allow_newlines=free)
        elif not isinstance(data, BaseModel):
            check_strings(data, field="body")
        return data


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


# -- violations (mini-program: list and detail) -------------------------------------------
class ReasonOut(BaseModel):
    """One failing rule of an online-handling refusal: its error code and sentence."""

    code: str = Field(description="A stable UPPER_SNAKE code of the error table.")
    message_zh: str
    message_en: str


class OnlineHandlingOut(BaseModel):
    """R-Q-3: may this caller handle the violation online, and if not, why."""

    allowed: bool | None = Field(description="null when eligibility could not be determined.")
    availability: Literal["allowed", "refused", "unknown"]
    route: str | None = Field(
        description=(
            "Allowed: `handler` (the handler's face check) or `owner_then_handler` (R-ADJ-4: "
            "the owner consents by face first). Refused: where to go instead, `counter` or "
            "`payment` (already decided: pay it), or null."
        )
    )
    reason_code: str | None = Field(description="The first failing rule's code (`reasons[0]`).")
    reason: str | None = Field(description="The reason in Chinese.")
    reason_en: str | None
    reasons: list[ReasonOut] = Field(
        default_factory=list,
        description="Every failing rule when refused, in a stable order; empty when allowed.",
    )


class ViolationOut(BaseModel):
    """A violation as the caller may see it (R-Q-3); also the body of the detail endpoint."""

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


# -- handlings (mini-program: online handling; counter: in-person handling) -------------------
HandlingStepName = Literal["owner", "handler"]
StepStatusName = Literal["pending", "passed", "failed", "expired", "used"]
HandlingStateName = Literal["awaiting_verification", "verified", "submitted", "failed"]
HandlingRouteName = Literal["handler", "owner_then_handler", "counter"]


class VerificationStepOut(BaseModel):
    """One face-verification step of a handling (R-ADJ-8)."""

    step: HandlingStepName = Field(
        description="`owner` (R-ADJ-4: the owner consents by face) or `handler`."
    )
    certify_id: str | None = Field(description="The face adapter's id of this verification.")
    url: str | None = Field(description="Where the person completes the face check.")
    status: StepStatusName
    person_name: str | None = Field(
        description="Whose face this step checks (masked `张*` for another person, R-Q-4)."
    )
    expires_at: datetime | None = Field(
        description="A passed verification is valid until then (R-ADJ-8, 10 min by default)."
    )


class DecisionOut(BaseModel):
    """R-ADJ-7: the penalty decision a handling issued."""

    decision_no: str = Field(description="16 digits: the authority code and a serial.")
    violation_id: str
    decision_date: date | None
    due_date: date | None = Field(description="R-PAY-2: 15 days after the decision date.")
    fine_fen: int
    points: int = Field(description="Points added to the handler's licence.")


class HandlingOut(BaseModel):
    """A handling: its face-verification steps, in order, and its decision once submitted."""

    handling_id: str
    violation_id: str
    state: HandlingStateName
    route: HandlingRouteName
    steps: list[VerificationStepOut] = Field(description="In the order they must pass.")
    handler_licence_id: str | None = Field(description="The licence the points go on.")
    decision: DecisionOut | None = Field(description="Set once the handling is submitted.")
    created_at: datetime | None


class HandleAtCounterBody(StrictRequest):
    """An in-person handling: the clerk checked the holder of ``licence_no`` at the desk."""

    licence_no: Str = Field(
        min_length=1,
        max_length=32,
        description="The licence the points go on (18-char ID number).",
    )


class DisputeBody(StrictRequest):
    """R-ADJ-9: why the violation's facts are disputed (as the person told the clerk)."""

    free_text_fields: ClassVar[frozenset[str]] = frozenset({"reason"})

    reason: Str = Field(min_length=1, max_length=500, description="Free text; line breaks allowed.")


AlertKindName = Literal["licence_for_many_vehicles", "vehicle_to_many_licences"]


class PointsBuyingAlertOut(BaseModel):
    """R-X-2: an online handling refused by the points-buying guard."""

    alert_id: str
    kind: AlertKindName = Field(
        description=(
            "`licence_for_many_vehicles`: one licence taking points for others' vehicles; "
            "`vehicle_to_many_licences`: one vehicle's points going to many licences."
        )
    )
    licence_id: str | None
    vehicle_id: str | None
    cycle_start: date | None = Field(description="The scoring cycle the count is about.")
    count: int = Field(description="Distinct vehicles (or licences) already in the cycle.")
    violation_id: str | None = Field(description="The violation whose handling was refused.")
    handler_person_id: str | None
    raised_at: datetime | None


class PointsBuyingAlertListOut(BaseModel):
    alerts: list[PointsBuyingAlertOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


# -- payments (mini-program: decisions, payments, receipts, feedback; counter: counter
# -- payments, refunds, feedback) -----------------------------------------------------------
DecisionStateName = Literal["unpaid", "payment_in_progress", "paid"]
PaymentStateName = Literal["pending", "succeeded", "failed", "duplicate", "refunded"]
PaymentChannelName = Literal["alipay", "counter_cash", "counter_card"]
CounterMethodName = Literal["cash", "card"]
RefundStateName = Literal["pending_approval", "approved", "refunded", "failed"]
#: ``pending`` is API.md's name for ``pending_approval`` (``?status=pending``).
RefundStatusFilter = Literal["pending", "pending_approval", "approved", "refunded", "failed"]


class PayableDecisionOut(BaseModel):
    """R-PAY-1/2: a penalty decision as payment knows it, priced for today (Asia/Shanghai)."""

    decision_no: str = Field(description="16 digits: the authority code and a serial.")
    violation_id: str | None
    decision_date: date | None
    due_date: date | None = Field(description="R-PAY-2: 15 days after the decision date.")
    fine_fen: int
    late_fee_fen: int = Field(
        description="R-PAY-2: 3 % of the fine per day from the 16th day, capped at the fine."
    )
    amount_due_fen: int = Field(description="Fine plus late fee, for today in Asia/Shanghai.")
    days_late: int = Field(description="Days past the due date (0 when not late).")
    state: DecisionStateName
    payable_here: bool = Field(
        description="R-PAY-1: only decisions of a Chongqing authority (prefix 50) are paid here."
    )
    not_payable_code: str | None = Field(
        description="When not payable here: the error-table code saying where to pay."
    )
    not_payable_message_zh: str | None
    not_payable_message_en: str | None
    authority_code: str | None = Field(description="The decision's division code (6 digits).")
    own: bool = Field(
        description=(
            "True when the caller is the decision's party: `party_name` and `plate_number` "
            "are then whole, otherwise masked (`张*`, `渝A***45`, R-Q-4). Anyone may look a "
            "decision up by its number and pay it."
        )
    )
    party_name: str | None
    plate_number: str | None
    violation_code: str | None
    description_zh: str | None
    occurred_at: datetime | None
    place: str | None
    points: int
    disputed: bool = Field(description="R-ADJ-9: not payable until staff clear the dispute.")


class CreatePaymentBody(StrictRequest):
    """Pay a decision online (the `Idempotency-Key` header is required)."""

    decision_no: Str = Field(min_length=1, max_length=32, description="16 digits.")


class CounterPaymentBody(StrictRequest):
    """A payment taken at the counter (the `Idempotency-Key` header is required)."""

    decision_no: Str = Field(min_length=1, max_length=32, description="16 digits.")
    method: CounterMethodName = Field(description="`cash` or `card`.")


class PaymentOut(BaseModel):
    """A payment. Rendered from the payment service's record only (nothing of the moment of
    the request), so a replayed creation answers the very same bytes (R-PAY-3)."""

    payment_id: str
    decision_no: str
    violation_id: str | None
    amount_fen: int = Field(
        description="Fixed when the payment was created: fine + late fee of that day (R-PAY-2)."
    )
    fine_fen: int
    late_fee_fen: int
    state: PaymentStateName
    channel: PaymentChannelName
    trade_no: str | None = Field(
        description="Alipay's trade number, for `my.tradePay`; null for counter payments."
    )
    out_trade_no: str = Field(description="Our order number at the provider.")
    created_at: datetime | None
    expires_at: datetime | None = Field(
        description="The trade closes at the next Asia/Shanghai midnight (the amount is of one day)."
    )
    paid_at: datetime | None
    failure_reason: str | None = Field(
        description="Why it failed: `closed`, `expired`, `provider_refused`; null otherwise."
    )


class FeedbackBody(StrictRequest):
    """R-PAY-9: e.g. "paid but not cleared"."""

    free_text_fields: ClassVar[frozenset[str]] = frozenset({"text"})

    text: Str = Field(min_length=1, max_length=500, description="Free text; line breaks allowed.")


class FeedbackOut(BaseModel):
    feedback_id: str
    created_at: datetime | None


class StaffFeedbackOut(BaseModel):
    """R-PAY-9: a user's feedback with the payment's state and the provider's view of it."""

    feedback_id: str
    payment_id: str
    decision_no: str
    text: str
    created_at: datetime | None
    payment_state: str = Field(description="Our state of the payment (`pending`, `succeeded` …).")
    out_trade_no: str | None
    provider_status: str = Field(
        description=(
            "The provider's trade status asked now: `WAIT_BUYER_PAY`, `TRADE_SUCCESS`, "
            "`TRADE_CLOSED`, `TRADE_FINISHED`, `NOT_FOUND`; `UNKNOWN` when it did not "
            "answer; `NONE` for a counter payment."
        )
    )


class StaffFeedbackListOut(BaseModel):
    feedback: list[StaffFeedbackOut] = Field(description="Newest first.")


class RefundOut(BaseModel):
    """R-PAY-5: the refund of a duplicate payment."""

    refund_id: str
    payment_id: str
    decision_no: str
    amount_fen: int
    state: RefundStateName = Field(
        description=(
            "`pending_approval` (a supervisor approves it), `approved` (the provider call is "
            "outstanding: approving again retries it safely), `refunded`, `failed`."
        )
    )
    reason: str = Field(description="`duplicate` (R-PAY-5).")
    channel: PaymentChannelName
    created_at: datetime | None
    approved_by: str | None
    refunded_at: datetime | None
    out_request_no: str | None = Field(
        description="The stable refund request number sent to the provider."
    )


class RefundListOut(BaseModel):
    refunds: list[RefundOut]


# -- people, vehicles, licences (mini-program: me, lookups; counter: staff lookups) ----------
class PersonOut(BaseModel):
    """A person as the caller may see them: masked unless it is the caller (R-Q-4) or staff."""

    person_id: str
    name: str | None = Field(description="`张*` unless it is the caller's own record.")
    id_number: str | None = Field(description="`5001**********1234` unless the caller's own.")
    phone: str | None = Field(description="`139****5678` unless the caller's own.")


class VehicleOut(BaseModel):
    """A vehicle with the caller's relation to it and its open violation counts."""

    vehicle_id: str
    plate_type: PlateTypeCode | None = Field(description="National plate-type code, e.g. `02`.")
    plate_number: str
    vin: str | None = Field(
        description="The full VIN for the owner and staff, otherwise its last 6 characters."
    )
    owner: PersonOut | None
    relation: RelationName | None = Field(
        description="`own`, `followed`, `proven` (a proof lookup), `staff` (counter reads)."
    )
    unhandled_count: int
    unpaid_count: int


class PointsOut(BaseModel):
    """R-X-1: the points dashboard of a licence in its current scoring cycle."""

    points: int = Field(description="Points recorded in the current scoring cycle.")
    points_limit: int = Field(description="The limit of a cycle (12 by default).")
    cycle_start: date | None
    cycle_end: date | None = Field(
        description="The cycle's last day: points below the limit with every fine paid clear after it."
    )
    may_drive: bool = Field(description="Whether the licence allows driving.")
    licence_status: str | None = Field(description="`valid`, `suspended`, `revoked` …")
    limit_reason: str | None = Field(
        description=(
            "Why not, when `may_drive` is false: `POINTS_LIMIT_REACHED`, `LICENCE_SUSPENDED`, "
            "`LICENCE_REVOKED`, `LICENCE_NOT_VALID`; null otherwise."
        )
    )
    limit_reason_zh: str | None
    limit_reason_en: str | None


class LicenceOut(BaseModel):
    """A driver licence with the caller's relation to it and its points dashboard."""

    licence_id: str
    licence_no: str = Field(description="The holder's ID number; masked unless the caller's own.")
    file_no: str | None
    licence_class: str | None = Field(description="e.g. `C1`, `A2`, `C1E`.")
    first_issued_on: date | None
    holder: PersonOut | None
    relation: RelationName | None = Field(
        description="`own`, `followed`, `proven` (a proof lookup), `staff` (counter reads)."
    )
    points: PointsOut | None


class MeOut(BaseModel):
    """The caller: registry person (null if none, R-USR-1), own and followed vehicles/licences."""

    user_id: str = Field(description="The Alipay user id of the caller.")
    person: PersonOut | None
    vehicles: list[VehicleOut]
    licence: LicenceOut | None
    followed_vehicles: list[VehicleOut]
    followed_licences: list[LicenceOut]


class LookupVehicleBody(StrictRequest):
    """R-Q-1 proof of a vehicle: plate type + plate number + VIN (last 6 or all 17)."""

    plate_type: PlateTypeCode
    plate_number: Str = Field(min_length=1, max_length=16, description="e.g. 渝A12345, 渝AD12345")
    vin: Str = Field(
        min_length=1,
        max_length=64,
        description="The last 6 characters of the VIN, or the full 17-character VIN.",
    )


class LookupLicenceBody(StrictRequest):
    """R-Q-1 proof of a driver licence: name + licence number + file number."""

    name: Str = Field(min_length=1, max_length=64, description="The holder's name, e.g. 张伟.")
    licence_no: Str = Field(
        min_length=1, max_length=32, description="The licence number (18-char ID number)."
    )
    file_no: Str = Field(min_length=1, max_length=32, description="The file number (12 digits).")


class LookupOut(BaseModel):
    """A vehicle or a licence (the other is null) with the first page of its violations."""

    vehicle: VehicleOut | None
    licence: LicenceOut | None
    violations: list[ViolationOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description=(
            "Continue with `GET /api/v1/violations?vehicle_id=…|licence_id=…&cursor=…` "
            "(the proof grants access for a while); null at the end."
        )
    )


class StaffLookupOut(LookupOut):
    """A counter read: the same shape as ``LookupOut``, unmasked, ``relation`` = ``staff``."""

    next_cursor: str | None = Field(
        description="Pass as `cursor` to the same endpoint for the next page; null at the end."
    )


# -- follows (R-FOL-1..8, R-SMS-1..3, R-X-3) ---------------------------------------------------
FollowRequestStateName = Literal[
    "pending_owner_approval", "pending_sms_code", "approved", "declined", "expired", "cancelled"
]
FollowTargetName = Literal["vehicle", "licence"]
FollowConsentName = Literal["owner_app", "sms", "none"]
#: R-SMS-1: the 6 digits of an SMS consent code (checked by the schema: 422 otherwise).
SMS_CODE_PATTERN = r"^[0-9]{6}$"


class FollowVehicleBody(LookupVehicleBody):
    """R-FOL-1: a friend's Chongqing vehicle: plate type + plate number + VIN (last 6 or all
    17), checked like a proof lookup (400 ``INVALID_PLATE_NUMBER`` / ``INVALID_VIN``)."""


class FollowLicenceBody(LookupLicenceBody):
    """R-FOL-8: a friend's driving licence: name + licence number (18-char ID number) + file
    number (12 digits), checked like a proof lookup (400 ``INVALID_ID_NUMBER`` /
    ``INVALID_FILE_NO``)."""


class SmsCodeBody(StrictRequest):
    """R-FOL-2, R-SMS-1: the code the owner's phone received, read out by the friend."""

    code: Str = Field(
        min_length=6,
        max_length=6,
        pattern=SMS_CODE_PATTERN,
        description=(
            "The 6 digits of the SMS (valid 5 minutes, used once). Full-width digits and "
            "spaces, as a Chinese keyboard may type them, are read as the digits alone."
        ),
    )

    @field_validator("code", mode="before")
    @classmethod
    def _as_typed(cls, value: Any) -> Any:
        # NFKC turns full-width digits into ASCII ones; spaces between digits are dropped.
        # Other types pass unchanged, for strict mode to refuse.
        if isinstance(value, str):
            return "".join(ch for ch in unicodedata.normalize("NFKC", value) if not ch.isspace())
        return value


class FollowRequestOut(BaseModel):
    """A request to follow a vehicle (R-FOL-2): waiting for the owner's approval in the app,
    or for the SMS code sent to the owner's phone; then approved (with its follow), declined,
    expired, or cancelled (the code was voided by wrong entries, R-SMS-1)."""

    request_id: str
    state: FollowRequestStateName
    vehicle_id: str | None
    plate_type: PlateTypeCode | None
    plate_number: str | None = Field(
        description="Masked (`渝A***45`) for the requester until the follow is active; whole "
        "for the owner."
    )
    requester_name_masked: str | None = Field(
        description="Who asks, masked (`刘*`): shown to the owner."
    )
    sms_phone_masked: str | None = Field(
        description="`139****0005`: where the code went (`pending_sms_code` only)."
    )
    created_at: datetime | None
    expires_at: datetime | None = Field(
        description="A request nobody acts on expires then (it spends no chance)."
    )
    sms_resend_at: datetime | None = Field(
        description="R-SMS-1: when another code may be sent to the owner's phone (60 s apart)."
    )
    follow_id: str | None = Field(description="The follow, once approved or confirmed.")


class FollowOut(BaseModel):
    """An active follow of a friend's vehicle or licence."""

    follow_id: str
    target: FollowTargetName
    vehicle_id: str | None
    licence_id: str | None
    plate_type: PlateTypeCode | None
    plate_number: str | None
    licence_holder_name_masked: str | None
    started_at: datetime | None
    expires_at: datetime | None = Field(
        description="R-FOL-5: an SMS-authorised vehicle follow ends after one year; null otherwise."
    )
    consent: FollowConsentName = Field(
        description="`owner_app` (the owner approved in the app), `sms` (by SMS code), "
        "`none` (licence follows need no consent)."
    )


class FollowListOut(BaseModel):
    """The caller's follows, what the quotas leave (R-FOL-3, R-FOL-8) and the requests still
    waiting for an owner or an SMS code."""

    follows: list[FollowOut]
    active: int = Field(description="R-FOL-3: active follows of other people's vehicles.")
    max_active: int = Field(description="R-FOL-3: at most this many at once (2).")
    chances_left_this_year: int = Field(
        description="R-FOL-3: follows that may still become active this calendar year "
        "(Asia/Shanghai); unfollowing gives none back."
    )
    chances_per_year: int = Field(description="R-FOL-3: chances of a calendar year (3).")
    licence_follows: int = Field(description="R-FOL-8: licences followed now.")
    max_licence_follows: int = Field(description="R-FOL-8: at most this many at once (5).")
    pending_requests: list[FollowRequestOut]


class IncomingFollowRequestsOut(BaseModel):
    """Requests to follow the caller's vehicles that wait for the caller's decision."""

    requests: list[FollowRequestOut]


class FollowerOut(BaseModel):
    """R-X-3: someone who follows one of the caller's vehicles."""

    follower_id: str = Field(description="`DELETE /api/v1/followers/{follower_id}` revokes it.")
    vehicle_id: str
    plate_number: str | None
    follower_name_masked: str | None = Field(description="Masked (`刘*`), R-Q-4.")
    since: datetime | None
    expires_at: datetime | None = Field(description="SMS-authorised follows end after a year.")
    consent: FollowConsentName


class FollowerListOut(BaseModel):
    followers: list[FollowerOut]


class SandboxSmsOut(BaseModel):
    """One SMS the recording adapter kept instead of sending it (sandbox mode only)."""

    phone: str
    template_code: str
    params: dict[str, str] = Field(
        description='The template\'s parameters as sent, the code included (`{"code": …}`).'
    )
    sent_at: datetime | None


class SandboxSmsListOut(BaseModel):
    messages: list[SandboxSmsOut] = Field(description="Newest first.")


# -- errors (documentation of the error body in /openapi.json) -----------------------------
class ErrorDetailOut(BaseModel):
    code: str = Field(description="A stable UPPER_SNAKE code (listed in the API description).")
    message_zh: str
    message_en: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    """Every non-2xx body."""

    error: ErrorDetailOut


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


# -- nightly jobs (R-JOB-*): run records and reconciliation, for staff -----------------------
JobRunStateName = Literal["running", "completed", "paused", "failed"]
MismatchKindName = Literal["ours_only", "theirs_only", "amount_differs"]


class JobRunOut(BaseModel):
    """One run of one nightly job (R-JOB-*), as the job runner recorded it."""

    run_id: str
    job: str = Field(description="The job's name, e.g. `expire_sms_follows`.")
    service: str = Field(description="The service that works it: payment, follow, adjudication.")
    night: date | None = Field(
        description="The Asia/Shanghai day the window started (22:00 that day to 00:30 the next)."
    )
    started_at: datetime | None
    ended_at: datetime | None = Field(description="None while the run is `running`.")
    state: JobRunStateName = Field(
        description=(
            "`running`; `completed`; `paused` (stopped before 00:30, the rest left for the "
            "next night); `failed` (a batch kept failing, or the runner stopped under it: the "
            "next run resumes from `checkpoint`)."
        )
    )
    items_done: int
    errors: int
    batches: int
    checkpoint: str = Field(description="Where the service stopped last (a resumed run starts).")
    message: str = Field(description="A short note: the last error, the service's remark.")
    forced: bool = Field(description="Started with --force (outside the window, or again).")
    resumed_from: str | None = Field(description="The run whose checkpoint this one resumed.")


class JobRunListOut(BaseModel):
    runs: list[JobRunOut] = Field(description="Newest first.")


class ReconciliationMismatchOut(BaseModel):
    kind: MismatchKindName = Field(
        description=(
            "`ours_only` (we hold it paid, the provider's statement lacks it), `theirs_only` "
            "(the statement has a trade we do not hold paid), `amount_differs`."
        )
    )
    out_trade_no: str
    our_amount_fen: int | None
    their_amount_fen: int | None


class ReconciliationOut(BaseModel):
    """R-JOB-2: one Asia/Shanghai day's payments against the provider's statement."""

    day: date
    reconciled: bool = Field(
        description="Whether the nightly job has reconciled this day (its statement existed)."
    )
    reconciled_at: datetime | None
    statement_lines: int
    our_payments: int
    mismatches: list[ReconciliationMismatchOut]
