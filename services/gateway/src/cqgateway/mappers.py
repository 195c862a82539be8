"""The one place where HTTP JSON and protobuf meet (decode requests, encode responses).

Conventions of the JSON side: snake_case fields as in the proto, enums as lower-case
names (``"non_site"``, ``"handled_unpaid"``), plate types as their national codes
(``"02"``), money as integer fen, timestamps ISO 8601 in Asia/Shanghai with the
offset, dates ``YYYY-MM-DD``, and unset proto strings/dates as ``null``.
Identifier formats are checked here with ``cqcommon.identifiers``, which raises
``DomainError`` with the identifier's own 400 code.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Any, Literal, TypeVar, cast, get_args
from zoneinfo import ZoneInfo

from cqcommon import identifiers as ids
from cqcommon import protomap
from cqcommon.errors import CATALOGUE, INTERNAL_ERROR, DomainError
from cqtraffic.adjudication.v1 import adjudication_pb2 as adj
from cqtraffic.common.v1 import types_pb2 as common
from cqtraffic.follow.v1 import events_pb2 as fol_events
from cqtraffic.follow.v1 import follow_pb2 as fol
from cqtraffic.payment.v1 import payment_pb2 as pay
from cqtraffic.query.v1 import query_pb2 as query
from google.protobuf.timestamp_pb2 import Timestamp

from cqgateway.idempotency import request_hash
from cqgateway.schemas import (
    AlertKindName,
    CounterPaymentBody,
    CreatePaymentBody,
    DecisionOut,
    DecisionStateName,
    DisputeBody,
    FeedbackBody,
    FeedbackOut,
    FollowConsentName,
    FollowerListOut,
    FollowerOut,
    FollowLicenceBody,
    FollowListOut,
    FollowOut,
    FollowRequestOut,
    FollowRequestStateName,
    FollowTargetName,
    FollowVehicleBody,
    HandleAtCounterBody,
    HandlingOut,
    HandlingRouteName,
    HandlingStateName,
    HandlingStepName,
    IncomingFollowRequestsOut,
    LicenceOut,
    LookupLicenceBody,
    LookupOut,
    LookupVehicleBody,
    MeOut,
    OnlineHandlingOut,
    PayableDecisionOut,
    PaymentChannelName,
    PaymentOut,
    PaymentStateName,
    PersonOut,
    PlateTypeCode,
    PointsBuyingAlertListOut,
    PointsBuyingAlertOut,
    PointsOut,
    ProcedureName,
    ReasonOut,
    RecordViolationBody,
    RefundListOut,
    RefundOut,
    RefundStateName,
    RefundStatusFilter,
    RelationName,
    SandboxSmsListOut,
    SandboxSmsOut,
    SmsCodeBody,
    StaffFeedbackListOut,
    StaffFeedbackOut,
    StaffLookupOut,
    StepStatusName,
    VehicleOut,
    VerificationStepOut,
    ViolationListOut,
    ViolationOut,
    ViolationRecord,
    ViolationSourceName,
    ViolationStatusName,
)

log = logging.getLogger("cqgateway.mappers")

SHANGHAI = ZoneInfo("Asia/Shanghai")

Availability = Literal["allowed", "refused", "unknown"]
_AVAILABILITY: dict[int, Availability] = {
    common.OnlineHandling.AVAILABILITY_ALLOWED: "allowed",
    common.OnlineHandling.AVAILABILITY_REFUSED: "refused",
}
# proto enum number → JSON name; the names are the Literal types' members by construction.
_SOURCE_OUT = {int(v): cast("ViolationSourceName", k) for k, v in protomap.SOURCES.items()}
_PROCEDURE_OUT = {int(v): cast("ProcedureName", k) for k, v in protomap.PROCEDURES.items()}
_STATUS_OUT = {int(v): cast("ViolationStatusName", k) for k, v in protomap.STATUSES.items()}
# The proto's relation is free text with a known set of values; anything else maps to null.
_RELATIONS: dict[str, RelationName] = {
    "own": "own",
    "followed": "followed",
    "proven": "proven",
    "staff": "staff",
}


# -- small conversions ------------------------------------------------------------------
def _opt(value: str) -> str | None:
    return value or None


def _timestamp(value: Timestamp) -> datetime | None:
    ts = protomap.timestamp_from_proto(value)
    return ts.astimezone(SHANGHAI) if ts is not None else None


def _date(value: common.Date) -> date | None:
    return protomap.date_from_proto(value)


def _plate_type(value: int) -> PlateTypeCode | None:
    plate = protomap.plate_type_from_proto(value)
    return plate.value if plate is not None else None


def _source(value: int) -> ViolationSourceName | None:
    return _SOURCE_OUT.get(value)


def _procedure(value: int) -> ProcedureName | None:
    return _PROCEDURE_OUT.get(value)


def _status(value: int) -> ViolationStatusName | None:
    return _STATUS_OUT.get(value)


def _page(cursor: str | None, limit: int) -> common.PageRequest:
    return common.PageRequest(page_size=limit, cursor=cursor or "")


def status_to_proto(value: ViolationStatusName | None) -> common.ViolationStatus.ValueType:
    if value is None:
        return common.VIOLATION_STATUS_UNSPECIFIED
    return protomap.STATUSES[value]


# -- POST /internal/v1/violations -------------------------------------------------------
def record_violation_request(
    body: RecordViolationBody, caller: common.Caller
) -> adj.RecordViolationRequest:
    """Validate identifier formats and build the adjudication request."""
    plate_type, plate_number = ids.parse_plate(body.plate_type, body.plate_number)
    request = adj.RecordViolationRequest(
        caller=caller,
        source_system=body.source_system,
        source_record_id=body.source_record_id,
        plate_type=protomap.plate_type_to_proto(plate_type),
        plate_number=plate_number,
        licence_no=ids.parse_id_number(body.licence_no) if body.licence_no else "",
        violation_code=ids.parse_violation_code(body.violation_code),
        occurred_at=protomap.timestamp_to_proto(body.occurred_at),
        place=body.place,
        fine_fen=body.fine_fen,
        source=protomap.SOURCES[body.source],
        procedure=protomap.PROCEDURES[body.procedure],
        decision_no=ids.parse_decision_no(body.decision_no) if body.decision_no else "",
        decision_date=protomap.date_to_proto(body.decision_date),
    )
    return request


def violation_record_out(v: adj.Violation) -> ViolationRecord:
    return ViolationRecord(
        violation_id=v.violation_id,
        source_system=v.source_system,
        source_record_id=v.source_record_id,
        vehicle_id=_opt(v.vehicle_id),
        plate_type=_plate_type(v.plate_type),
        plate_number=v.plate_number,
        licence_id=_opt(v.licence_id),
        violation_code=v.violation_code,
        description_zh=v.description_zh,
        occurred_at=_timestamp(v.occurred_at),
        place=v.place,
        fine_fen=v.fine_fen,
        points=v.points,
        source=_source(v.source),
        procedure=_procedure(v.procedure),
        status=_status(v.status),
        decision_no=_opt(v.decision_no),
        decision_date=_date(v.decision_date),
        disputed=v.disputed,
    )


# -- GET /api/v1/violations -------------------------------------------------------------
def list_violations_request(
    caller: common.Caller,
    *,
    vehicle_id: str | None,
    licence_id: str | None,
    status: ViolationStatusName | None,
    cursor: str | None,
    limit: int,
) -> query.ListViolationsRequest:
    request = query.ListViolationsRequest(
        caller=caller,
        status=status_to_proto(status),
        page=_page(cursor, limit),
    )
    if vehicle_id is not None:
        request.vehicle_id = vehicle_id
    elif licence_id is not None:
        request.licence_id = licence_id
    return request


def online_handling_out(value: common.OnlineHandling) -> OnlineHandlingOut | None:
    if value.availability == common.OnlineHandling.AVAILABILITY_UNSPECIFIED:
        return None
    availability: Availability = _AVAILABILITY.get(value.availability, "unknown")
    return OnlineHandlingOut(
        allowed=None if availability == "unknown" else availability == "allowed",
        availability=availability,
        route=_opt(value.route),
        reason_code=_opt(value.reason_code),
        reason=_opt(value.reason_zh),
        reason_en=_opt(value.reason_en),
        reasons=[ReasonOut(code=r.code, message_zh=r.zh, message_en=r.en) for r in value.reasons],
    )


def violation_out(v: query.ViolationView) -> ViolationOut:
    return ViolationOut(
        violation_id=v.violation_id,
        vehicle_id=_opt(v.vehicle_id),
        plate_type=_plate_type(v.plate_type),
        plate_number=v.plate_number,
        licence_id=_opt(v.licence_id),
        occurred_at=_timestamp(v.occurred_at),
        place=v.place,
        violation_code=v.violation_code,
        description_zh=v.description_zh,
        fine_fen=v.fine_fen,
        points=v.points,
        source=_source(v.source),
        procedure=_procedure(v.procedure),
        status=_status(v.status),
        decision_no=_opt(v.decision_no),
        decision_date=_date(v.decision_date),
        due_date=_date(v.due_date),
        late_fee_fen=v.late_fee_fen,
        amount_due_fen=v.amount_due_fen,
        disputed=v.disputed,
        online_handling=online_handling_out(v.online_handling)
        if v.HasField("online_handling")
        else None,
    )


def violation_list_out(response: query.ListViolationsResponse) -> ViolationListOut:
    return ViolationListOut(
        violations=[violation_out(v) for v in response.violations],
        next_cursor=_opt(response.next_cursor),
    )


# -- people, vehicles, licences -----------------------------------------------------------
def person_out(p: query.PersonView) -> PersonOut:
    """The person as the query service sent it (already masked where R-Q-4 says so)."""
    return PersonOut(
        person_id=p.person_id,
        name=_opt(p.name),
        id_number=_opt(p.id_number),
        phone=_opt(p.phone),
    )


def points_out(p: query.PointsDashboard) -> PointsOut:
    return PointsOut(
        points=p.points,
        points_limit=p.points_limit,
        cycle_start=_date(p.cycle_start),
        cycle_end=_date(p.cycle_end),
        may_drive=p.may_drive,
        licence_status=_opt(p.licence_status),
        limit_reason=_opt(p.limit_reason),
        limit_reason_zh=_opt(p.limit_reason_zh),
        limit_reason_en=_opt(p.limit_reason_en),
    )


def vehicle_out(v: query.VehicleView) -> VehicleOut:
    return VehicleOut(
        vehicle_id=v.vehicle_id,
        plate_type=_plate_type(v.plate_type),
        plate_number=v.plate_number,
        vin=_opt(v.vin),
        owner=person_out(v.owner) if v.HasField("owner") else None,
        relation=_RELATIONS.get(v.relation),
        unhandled_count=v.unhandled_count,
        unpaid_count=v.unpaid_count,
    )


def licence_out(v: query.LicenceView) -> LicenceOut:
    return LicenceOut(
        licence_id=v.licence_id,
        licence_no=v.licence_no,
        file_no=_opt(v.file_no),
        licence_class=_opt(v.licence_class),
        first_issued_on=_date(v.first_issued_on),
        holder=person_out(v.holder) if v.HasField("holder") else None,
        relation=_RELATIONS.get(v.relation),
        points=points_out(v.points) if v.HasField("points") else None,
    )


# -- GET /api/v1/me ---------------------------------------------------------------------
def me_request(caller: common.Caller) -> query.GetMeRequest:
    return query.GetMeRequest(caller=caller)


def me_out(user_id: str, r: query.GetMeResponse) -> MeOut:
    return MeOut(
        user_id=user_id,
        person=person_out(r.person) if r.HasField("person") else None,
        vehicles=[vehicle_out(v) for v in r.vehicles],
        licence=licence_out(r.licence) if r.HasField("licence") else None,
        followed_vehicles=[vehicle_out(v) for v in r.followed_vehicles],
        followed_licences=[licence_out(v) for v in r.followed_licences],
    )


# -- POST /api/v1/violations/lookup/{vehicle,licence} -----------------------------------------
def lookup_vehicle_request(
    body: LookupVehicleBody, caller: common.Caller
) -> query.LookupVehicleRequest:
    """Validate the plate and VIN proof and build the query request."""
    plate_type, plate_number = ids.parse_plate(body.plate_type, body.plate_number)
    return query.LookupVehicleRequest(
        caller=caller,
        plate_type=protomap.plate_type_to_proto(plate_type),
        plate_number=plate_number,
        vin=ids.parse_vin_proof(body.vin),
    )


def lookup_licence_request(
    body: LookupLicenceBody, caller: common.Caller
) -> query.LookupLicenceRequest:
    """Validate the licence and file numbers and build the query request."""
    return query.LookupLicenceRequest(
        caller=caller,
        name=body.name,
        licence_no=ids.parse_id_number(body.licence_no),
        file_no=ids.parse_file_no(body.file_no),
    )


_Lookup = TypeVar("_Lookup", bound=LookupOut)


def _lookup(model: type[_Lookup], r: query.LookupResponse) -> _Lookup:
    return model(
        vehicle=vehicle_out(r.vehicle) if r.HasField("vehicle") else None,
        licence=licence_out(r.licence) if r.HasField("licence") else None,
        violations=[violation_out(v) for v in r.violations],
        next_cursor=_opt(r.next_cursor),
    )


def lookup_out(r: query.LookupResponse) -> LookupOut:
    return _lookup(LookupOut, r)


# -- GET /api/v1/violations/{violation_id} -------------------------------------------------
def get_violation_request(caller: common.Caller, violation_id: str) -> query.GetViolationRequest:
    return query.GetViolationRequest(caller=caller, violation_id=violation_id)


# -- GET /internal/v1/vehicles, /internal/v1/licences ----------------------------------------
def staff_vehicle_request(
    caller: common.Caller,
    *,
    plate_type: PlateTypeCode,
    plate_number: str,
    cursor: str | None,
    limit: int,
) -> query.StaffGetVehicleRequest:
    """Validate the plate and build the query request (plate number in canonical form)."""
    ptype, plate = ids.parse_plate(plate_type, plate_number)
    return query.StaffGetVehicleRequest(
        caller=caller,
        plate_type=protomap.plate_type_to_proto(ptype),
        plate_number=plate,
        page=_page(cursor, limit),
    )


def staff_licence_request(
    caller: common.Caller, *, licence_no: str, cursor: str | None, limit: int
) -> query.StaffGetLicenceRequest:
    """Validate the licence number and build the query request."""
    return query.StaffGetLicenceRequest(
        caller=caller,
        licence_no=ids.parse_id_number(licence_no),
        page=_page(cursor, limit),
    )


def staff_lookup_out(r: query.LookupResponse) -> StaffLookupOut:
    return _lookup(StaffLookupOut, r)


# -- /api/v1/violations/{id}/handlings, /api/v1/handlings/{id}/… ----------------------------
def _contract_break(message: str) -> DomainError:
    """An answer of a service outside the documented contract: a bug there, logged for us
    and answered as 500 ``INTERNAL_ERROR`` (never passed on half-mapped)."""
    log.error("service answer outside the contract: %s", message)
    return DomainError(INTERNAL_ERROR)


def _known(value: str, names: Any, what: str) -> Any:
    """``value`` when it is one of the Literal type ``names``' members (the proto carries
    these as free text with a documented set of values)."""
    if value not in get_args(names):
        raise _contract_break(f"unexpected {what} {value!r}")
    return value


def start_handling_request(caller: common.Caller, violation_id: str) -> adj.StartHandlingRequest:
    return adj.StartHandlingRequest(caller=caller, violation_id=violation_id)


def complete_verification_request(
    caller: common.Caller, handling_id: str, step: HandlingStepName
) -> adj.CompleteVerificationRequest:
    return adj.CompleteVerificationRequest(caller=caller, handling_id=handling_id, step=step)


def submit_handling_request(caller: common.Caller, handling_id: str) -> adj.SubmitHandlingRequest:
    return adj.SubmitHandlingRequest(caller=caller, handling_id=handling_id)


def get_handling_request(caller: common.Caller, handling_id: str) -> adj.GetHandlingRequest:
    return adj.GetHandlingRequest(caller=caller, handling_id=handling_id)


def verification_step_out(s: adj.VerificationStep) -> VerificationStepOut:
    step: HandlingStepName = _known(s.step, HandlingStepName, "verification step")
    status: StepStatusName = _known(s.status, StepStatusName, "verification status")
    return VerificationStepOut(
        step=step,
        certify_id=_opt(s.certify_id),
        url=_opt(s.url),
        status=status,
        person_name=_opt(s.person_name),
        expires_at=_timestamp(s.expires_at) if s.HasField("expires_at") else None,
    )


def decision_out(d: adj.Decision) -> DecisionOut:
    return DecisionOut(
        decision_no=d.decision_no,
        violation_id=d.violation_id,
        decision_date=_date(d.decision_date),
        due_date=_date(d.due_date),
        fine_fen=d.fine_fen,
        points=d.points,
    )


def handling_out(h: adj.Handling) -> HandlingOut:
    state: HandlingStateName = _known(h.state, HandlingStateName, "handling state")
    route: HandlingRouteName = _known(h.route, HandlingRouteName, "handling route")
    decided = h.HasField("decision") and bool(h.decision.decision_no)
    return HandlingOut(
        handling_id=h.handling_id,
        violation_id=h.violation_id,
        state=state,
        route=route,
        steps=[verification_step_out(s) for s in h.steps],
        handler_licence_id=_opt(h.handler_licence_id),
        decision=decision_out(h.decision) if decided else None,
        created_at=_timestamp(h.created_at) if h.HasField("created_at") else None,
    )


def submitted_decision_out(h: adj.Handling) -> DecisionOut:
    """The decision of a submitted handling (a submit that answers without one broke the
    contract: a 500, never an empty decision)."""
    if not (h.HasField("decision") and h.decision.decision_no):
        raise _contract_break(f"submit of handling {h.handling_id!r} answered without a decision")
    return decision_out(h.decision)


# -- /internal/v1/violations/{id}/handle, /dispute, /undispute --------------------------------
def handle_at_counter_request(
    caller: common.Caller, violation_id: str, body: HandleAtCounterBody
) -> adj.HandleAtCounterRequest:
    """Validate the licence number (400 ``INVALID_ID_NUMBER``) and build the request."""
    return adj.HandleAtCounterRequest(
        caller=caller,
        violation_id=violation_id,
        handler_licence_no=ids.parse_id_number(body.licence_no),
    )


def dispute_request(
    caller: common.Caller, violation_id: str, body: DisputeBody
) -> adj.DisputeViolationRequest:
    return adj.DisputeViolationRequest(caller=caller, violation_id=violation_id, reason=body.reason)


def undispute_request(caller: common.Caller, violation_id: str) -> adj.UndisputeViolationRequest:
    return adj.UndisputeViolationRequest(caller=caller, violation_id=violation_id)


# -- /internal/v1/alerts/points-buying ------------------------------------------------------
def points_buying_alerts_request(
    caller: common.Caller, *, cursor: str | None, limit: int
) -> adj.ListPointsBuyingAlertsRequest:
    return adj.ListPointsBuyingAlertsRequest(caller=caller, page=_page(cursor, limit))


def points_buying_alert_out(a: adj.PointsBuyingAlert) -> PointsBuyingAlertOut:
    kind: AlertKindName = _known(a.kind, AlertKindName, "alert kind")
    return PointsBuyingAlertOut(
        alert_id=a.alert_id,
        kind=kind,
        licence_id=_opt(a.licence_id),
        vehicle_id=_opt(a.vehicle_id),
        cycle_start=_date(a.cycle_start),
        count=a.count,
        violation_id=_opt(a.violation_id),
        handler_person_id=_opt(a.handler_person_id),
        raised_at=_timestamp(a.raised_at) if a.HasField("raised_at") else None,
    )


def points_buying_alert_list_out(
    r: adj.ListPointsBuyingAlertsResponse,
) -> PointsBuyingAlertListOut:
    return PointsBuyingAlertListOut(
        alerts=[points_buying_alert_out(a) for a in r.alerts],
        next_cursor=_opt(r.next_cursor),
    )


# -- /api/v1/decisions, /api/v1/payments, /internal/v1/payments, /internal/v1/refunds ----------
#: The operations a payment idempotency key fingerprints (``CreatePaymentRequest.request_hash``).
CREATE_PAYMENT_OPERATION = "POST /api/v1/payments"
COUNTER_PAYMENT_OPERATION = "POST /internal/v1/payments/counter"


def _ts_field(message: Any, name: str) -> datetime | None:
    return _timestamp(getattr(message, name)) if message.HasField(name) else None


def get_decision_request(caller: common.Caller, decision_no: str) -> pay.GetDecisionRequest:
    """Validate the number (400 ``INVALID_DECISION_NO``) and build the request."""
    return pay.GetDecisionRequest(caller=caller, decision_no=ids.parse_decision_no(decision_no))


def payable_decision_out(d: pay.PayableDecision) -> PayableDecisionOut:
    state: DecisionStateName = _known(d.state, DecisionStateName, "decision state")
    not_payable = None
    if not d.payable_here:
        # R-PAY-1: the code says where to pay; its sentences come from the one table.
        not_payable = CATALOGUE.get(d.not_payable_code)
        if not_payable is None:
            raise _contract_break(f"unknown not_payable_code {d.not_payable_code!r}")
    return PayableDecisionOut(
        decision_no=d.decision_no,
        violation_id=_opt(d.violation_id),
        decision_date=_date(d.decision_date),
        due_date=_date(d.due_date),
        fine_fen=d.fine_fen,
        late_fee_fen=d.late_fee_fen,
        amount_due_fen=d.amount_due_fen,
        days_late=d.days_late,
        state=state,
        payable_here=d.payable_here,
        not_payable_code=not_payable.code if not_payable else None,
        not_payable_message_zh=not_payable.message_zh if not_payable else None,
        not_payable_message_en=not_payable.message_en if not_payable else None,
        authority_code=_opt(d.authority_code),
        own=d.own,
        party_name=_opt(d.party_name),
        plate_number=_opt(d.plate_number),
        violation_code=_opt(d.violation_code),
        description_zh=_opt(d.description_zh),
        occurred_at=_ts_field(d, "occurred_at"),
        place=_opt(d.place),
        points=d.points,
        disputed=d.disputed,
    )


def create_payment_request(
    caller: common.Caller, body: CreatePaymentBody, idempotency_key: str
) -> pay.CreatePaymentRequest:
    """Validate the decision number and fingerprint the request as it will be executed."""
    decision_no = ids.parse_decision_no(body.decision_no)
    return pay.CreatePaymentRequest(
        caller=caller,
        decision_no=decision_no,
        idempotency_key=idempotency_key,
        request_hash=request_hash(CREATE_PAYMENT_OPERATION, {"decision_no": decision_no}),
    )


def counter_payment_request(
    caller: common.Caller, body: CounterPaymentBody, idempotency_key: str
) -> pay.CreateCounterPaymentRequest:
    decision_no = ids.parse_decision_no(body.decision_no)
    return pay.CreateCounterPaymentRequest(
        caller=caller,
        decision_no=decision_no,
        method=body.method,
        idempotency_key=idempotency_key,
        request_hash=request_hash(
            COUNTER_PAYMENT_OPERATION, {"decision_no": decision_no, "method": body.method}
        ),
    )


def payment_out(p: pay.Payment) -> PaymentOut:
    """The JSON of a payment: a pure function of the message, so equal messages (a replayed
    creation) render to equal bytes."""
    state: PaymentStateName = _known(p.state, PaymentStateName, "payment state")
    channel: PaymentChannelName = _known(p.channel, PaymentChannelName, "payment channel")
    return PaymentOut(
        payment_id=p.payment_id,
        decision_no=p.decision_no,
        violation_id=_opt(p.violation_id),
        amount_fen=p.amount_fen,
        fine_fen=p.fine_fen,
        late_fee_fen=p.late_fee_fen,
        state=state,
        channel=channel,
        trade_no=_opt(p.provider_trade_no),
        out_trade_no=p.out_trade_no,
        created_at=_ts_field(p, "created_at"),
        expires_at=_ts_field(p, "expires_at"),
        paid_at=_ts_field(p, "paid_at"),
        failure_reason=_opt(p.failure_reason),
    )


def created_payment_out(r: pay.CreatePaymentResponse) -> PaymentOut:
    """The payment of a creation (an answer without one broke the contract: a 500)."""
    if not (r.HasField("payment") and r.payment.payment_id):
        raise _contract_break("payment creation answered without a payment")
    return payment_out(r.payment)


def get_payment_request(caller: common.Caller, payment_id: str) -> pay.GetPaymentRequest:
    return pay.GetPaymentRequest(caller=caller, payment_id=payment_id)


def receipt_request(caller: common.Caller, payment_id: str) -> pay.GetReceiptRequest:
    return pay.GetReceiptRequest(caller=caller, payment_id=payment_id)


_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def attachment_filename(filename: str, fallback: str = "receipt.pdf") -> str:
    """The document's file name when it is a plain one (it goes into a header: no quotes,
    separators, controls or non-ASCII), else ``fallback``."""
    return filename if _SAFE_FILENAME.fullmatch(filename) else fallback


def feedback_request(
    caller: common.Caller, payment_id: str, body: FeedbackBody
) -> pay.FileFeedbackRequest:
    return pay.FileFeedbackRequest(caller=caller, payment_id=payment_id, text=body.text)


def feedback_out(r: pay.FileFeedbackResponse) -> FeedbackOut:
    return FeedbackOut(feedback_id=r.feedback_id, created_at=_ts_field(r, "created_at"))


def list_feedback_request(caller: common.Caller, limit: int) -> pay.ListFeedbackRequest:
    return pay.ListFeedbackRequest(caller=caller, limit=limit)


def staff_feedback_list_out(r: pay.ListFeedbackResponse) -> StaffFeedbackListOut:
    return StaffFeedbackListOut(
        feedback=[
            StaffFeedbackOut(
                feedback_id=f.feedback_id,
                payment_id=f.payment_id,
                decision_no=f.decision_no,
                text=f.text,
                created_at=_ts_field(f, "created_at"),
                payment_state=f.payment_state,
                out_trade_no=_opt(f.out_trade_no),
                provider_status=f.provider_status or "UNKNOWN",
            )
            for f in r.feedback
        ]
    )


def refund_state_filter(status: RefundStatusFilter | None) -> str:
    """The service's state name for ``?status=`` (API.md's ``pending`` is ``pending_approval``;
    none: every state)."""
    if status is None:
        return ""
    return "pending_approval" if status == "pending" else status


def list_refunds_request(
    caller: common.Caller, status: RefundStatusFilter | None
) -> pay.ListRefundsRequest:
    return pay.ListRefundsRequest(caller=caller, status=refund_state_filter(status))


def approve_refund_request(caller: common.Caller, refund_id: str) -> pay.ApproveRefundRequest:
    return pay.ApproveRefundRequest(caller=caller, refund_id=refund_id)


def refund_out(r: pay.Refund) -> RefundOut:
    state: RefundStateName = _known(r.state, RefundStateName, "refund state")
    channel: PaymentChannelName = _known(r.channel, PaymentChannelName, "refund channel")
    return RefundOut(
        refund_id=r.refund_id,
        payment_id=r.payment_id,
        decision_no=r.decision_no,
        amount_fen=r.amount_fen,
        state=state,
        reason=r.reason,
        channel=channel,
        created_at=_ts_field(r, "created_at"),
        approved_by=_opt(r.approved_by),
        refunded_at=_ts_field(r, "refunded_at"),
        out_request_no=_opt(r.out_request_no),
    )


def refund_list_out(r: pay.ListRefundsResponse) -> RefundListOut:
    return RefundListOut(refunds=[refund_out(item) for item in r.refunds])


# -- /api/v1/follows, /api/v1/follow-requests, /api/v1/followers, /internal/v1/sandbox/sms -----
_TARGETS: dict[int, FollowTargetName] = {
    fol_events.FOLLOW_TARGET_VEHICLE: "vehicle",
    fol_events.FOLLOW_TARGET_LICENCE: "licence",
}


def follow_vehicle_request(
    caller: common.Caller, body: FollowVehicleBody
) -> fol.RequestVehicleFollowRequest:
    """Validate the plate and the VIN (400 ``INVALID_PLATE_NUMBER`` / ``INVALID_VIN``, as a
    proof lookup does) and build the request (plate in canonical form, VIN upper case)."""
    plate_type, plate_number = ids.parse_plate(body.plate_type, body.plate_number)
    return fol.RequestVehicleFollowRequest(
        caller=caller,
        plate_type=protomap.plate_type_to_proto(plate_type),
        plate_number=plate_number,
        vin=ids.parse_vin_proof(body.vin),
    )


def submit_sms_code_request(
    caller: common.Caller, request_id: str, body: SmsCodeBody
) -> fol.SubmitSmsCodeRequest:
    return fol.SubmitSmsCodeRequest(caller=caller, request_id=request_id, code=body.code)


def list_incoming_requests_request(caller: common.Caller) -> fol.ListIncomingRequestsRequest:
    return fol.ListIncomingRequestsRequest(caller=caller)


def list_follows_request(caller: common.Caller) -> fol.ListFollowsRequest:
    return fol.ListFollowsRequest(caller=caller)


def list_followers_request(caller: common.Caller) -> fol.ListFollowersRequest:
    return fol.ListFollowersRequest(caller=caller)


def decide_request(caller: common.Caller, request_id: str) -> fol.DecideRequestRequest:
    return fol.DecideRequestRequest(caller=caller, request_id=request_id)


def end_follow_request(caller: common.Caller, follow_id: str) -> fol.EndFollowRequest:
    return fol.EndFollowRequest(caller=caller, follow_id=follow_id)


def follow_licence_request(
    caller: common.Caller, body: FollowLicenceBody
) -> fol.FollowLicenceRequest:
    """Validate the licence and file numbers (400 ``INVALID_ID_NUMBER`` /
    ``INVALID_FILE_NO``) and build the request."""
    return fol.FollowLicenceRequest(
        caller=caller,
        name=body.name,
        licence_no=ids.parse_id_number(body.licence_no),
        file_no=ids.parse_file_no(body.file_no),
    )


def follow_request_out(r: fol.FollowRequest) -> FollowRequestOut:
    state: FollowRequestStateName = _known(r.state, FollowRequestStateName, "request state")
    return FollowRequestOut(
        request_id=r.request_id,
        state=state,
        vehicle_id=_opt(r.vehicle_id),
        plate_type=_plate_type(r.plate_type),
        plate_number=_opt(r.plate_number),
        requester_name_masked=_opt(r.requester_name_masked),
        sms_phone_masked=_opt(r.sms_phone_masked),
        created_at=_ts_field(r, "created_at"),
        expires_at=_ts_field(r, "expires_at"),
        sms_resend_at=_ts_field(r, "sms_resend_at"),
        follow_id=_opt(r.follow_id),
    )


def _target(value: int, follow_id: str) -> FollowTargetName:
    target = _TARGETS.get(value)
    if target is None:
        raise _contract_break(f"follow {follow_id!r} has no target")
    return target


def follow_out(f: fol.Follow) -> FollowOut:
    consent: FollowConsentName = _known(f.consent, FollowConsentName, "follow consent")
    return FollowOut(
        follow_id=f.follow_id,
        target=_target(f.target, f.follow_id),
        vehicle_id=_opt(f.vehicle_id),
        licence_id=_opt(f.licence_id),
        plate_type=_plate_type(f.plate_type),
        plate_number=_opt(f.plate_number),
        licence_holder_name_masked=_opt(f.licence_holder_name_masked),
        started_at=_ts_field(f, "started_at"),
        expires_at=_ts_field(f, "expires_at"),
        consent=consent,
    )


def follow_list_out(r: fol.ListFollowsResponse) -> FollowListOut:
    return FollowListOut(
        follows=[follow_out(f) for f in r.follows],
        active=r.active,
        max_active=r.max_active,
        chances_left_this_year=r.chances_left_this_year,
        chances_per_year=r.chances_per_year,
        licence_follows=r.licence_follows,
        max_licence_follows=r.max_licence_follows,
        pending_requests=[follow_request_out(p) for p in r.pending_requests],
    )


def incoming_requests_out(r: fol.ListIncomingRequestsResponse) -> IncomingFollowRequestsOut:
    return IncomingFollowRequestsOut(requests=[follow_request_out(x) for x in r.requests])


def follower_out(f: fol.Follower) -> FollowerOut:
    consent: FollowConsentName = _known(f.consent, FollowConsentName, "follow consent")
    return FollowerOut(
        follower_id=f.follower_id,
        vehicle_id=f.vehicle_id,
        plate_number=_opt(f.plate_number),
        follower_name_masked=_opt(f.follower_name_masked),
        since=_ts_field(f, "since"),
        expires_at=_ts_field(f, "expires_at"),
        consent=consent,
    )


def follower_list_out(r: fol.ListFollowersResponse) -> FollowerListOut:
    return FollowerListOut(followers=[follower_out(f) for f in r.followers])


def sandbox_sms_request(
    caller: common.Caller, phone: str | None, limit: int
) -> fol.ListSandboxSmsRequest:
    return fol.ListSandboxSmsRequest(caller=caller, phone=phone or "", limit=limit)


def sandbox_sms_list_out(r: fol.ListSandboxSmsResponse) -> SandboxSmsListOut:
    return SandboxSmsListOut(
        messages=[
            SandboxSmsOut(
                phone=m.phone,
                template_code=m.template_code,
                params=dict(m.params),
                sent_at=_ts_field(m, "sent_at"),
            )
            for m in r.messages
        ]
    )
