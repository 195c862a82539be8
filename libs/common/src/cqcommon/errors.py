"""The domain error model shared by every service and the gateway.

A ``DomainError`` carries a stable UPPER_SNAKE ``code``, a message in Chinese and
in English, an ``ErrorKind`` (which decides the gRPC status and, in the gateway,
the HTTP status) and optional ``details``. Services raise them from the domain
and service layer; the gRPC interceptor turns them into a status plus trailing
metadata, and the gateway turns that back into API.md's error body.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ErrorKind(enum.Enum):
    """What kind of failure an error is; each maps to one gRPC and one HTTP status."""

    INVALID = "invalid"  # 400/422 bad input
    UNAUTHENTICATED = "unauthenticated"  # 401
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404 (also: not yours)
    CONFLICT = "conflict"  # 409
    RATE_LIMITED = "rate_limited"  # 429
    UNAVAILABLE = "unavailable"  # 503
    NOT_IMPLEMENTED = "not_implemented"  # 501: a contract method a later release fills in
    INTERNAL = "internal"  # 500


@dataclass(frozen=True)
class ErrorSpec:
    """A catalogued error: its stable code, kind and default messages."""

    code: str
    kind: ErrorKind
    message_zh: str
    message_en: str


class DomainError(Exception):
    """An expected, user-facing failure with a stable code."""

    def __init__(
        self,
        spec: ErrorSpec,
        *,
        details: Mapping[str, Any] | None = None,
        message_zh: str | None = None,
        message_en: str | None = None,
    ) -> None:
        self.spec = spec
        self.code = spec.code
        self.kind = spec.kind
        self.message_zh = message_zh or spec.message_zh
        self.message_en = message_en or spec.message_en
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(f"{self.code}: {self.message_en}")

    def to_payload(self) -> dict[str, Any]:
        """The API.md error body's inner object."""
        return {
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "details": self.details,
        }

    def to_bytes(self) -> bytes:
        """Serialised form carried in gRPC trailing metadata (``error-bin``)."""
        body = self.to_payload() | {"kind": self.kind.value}
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> DomainError:
        """Rebuild an error that crossed a gRPC boundary."""
        body = json.loads(raw.decode())
        spec = CATALOGUE.get(body["code"]) or ErrorSpec(
            body["code"],
            ErrorKind(body.get("kind", "internal")),
            body["message_zh"],
            body["message_en"],
        )
        return cls(
            spec,
            details=body.get("details") or {},
            message_zh=body.get("message_zh"),
            message_en=body.get("message_en"),
        )


#: The one error-code table: every code any service or the gateway can answer, defined
#: below and nowhere else, so the gateway (which imports no service package) lists them all
#: in its OpenAPI description. Add a code here, in its section, when a use case needs one.
CATALOGUE: dict[str, ErrorSpec] = {}


def _define(code: str, kind: ErrorKind, message_zh: str, message_en: str) -> ErrorSpec:
    """Add a stable error code to the table (only this module does: the table is complete)."""
    if code in CATALOGUE:
        raise ValueError(f"error code {code} defined twice")
    spec = ErrorSpec(code, kind, message_zh, message_en)
    CATALOGUE[code] = spec
    return spec


# -- codes every layer uses ------------------------------------------------------------
VALIDATION_FAILED = _define(
    "VALIDATION_FAILED", ErrorKind.INVALID, "请求参数不正确。", "The request is not valid."
)
MALFORMED_JSON = _define(
    "MALFORMED_JSON",
    ErrorKind.INVALID,
    "请求体不是有效的 JSON。",
    "The request body is not valid JSON.",
)
BODY_TOO_LARGE = _define(
    "BODY_TOO_LARGE", ErrorKind.INVALID, "请求体过大。", "The request body is too large."
)
UNSUPPORTED_MEDIA_TYPE = _define(
    "UNSUPPORTED_MEDIA_TYPE",
    ErrorKind.INVALID,
    "请求的内容类型不受支持。",
    "The request content type is not supported.",
)
UNAUTHENTICATED = _define(
    "UNAUTHENTICATED", ErrorKind.UNAUTHENTICATED, "请先登录。", "Authentication is required."
)
TOKEN_INVALID = _define(
    "TOKEN_INVALID",
    ErrorKind.UNAUTHENTICATED,
    "登录凭证无效或已过期，请重新登录。",
    "The token is invalid or has expired; please log in again.",
)
FORBIDDEN = _define(
    "FORBIDDEN", ErrorKind.FORBIDDEN, "您无权执行此操作。", "You are not allowed to do this."
)
NOT_FOUND = _define("NOT_FOUND", ErrorKind.NOT_FOUND, "未找到相关记录。", "No such record.")
INVALID_CURSOR = _define(
    "INVALID_CURSOR", ErrorKind.INVALID, "分页游标无效。", "The page cursor is not valid."
)
RATE_LIMITED = _define(
    "RATE_LIMITED",
    ErrorKind.RATE_LIMITED,
    "操作过于频繁，请稍后再试。",
    "Too many requests; try again later.",
)
SERVICE_UNAVAILABLE = _define(
    "SERVICE_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "服务暂时不可用，请稍后再试。",
    "The service is temporarily unavailable; try again later.",
)
NOT_IMPLEMENTED = _define(
    "NOT_IMPLEMENTED",
    ErrorKind.NOT_IMPLEMENTED,
    "该功能尚未开放。",
    "This function is not available yet.",
)
INTERNAL_ERROR = _define(
    "INTERNAL_ERROR",
    ErrorKind.INTERNAL,
    "系统内部错误，请稍后再试。",
    "Internal error; try again later.",
)

# -- identifiers (cqcommon.identifiers) ----------------------------------------
INVALID_PLATE_NUMBER = _define(
    "INVALID_PLATE_NUMBER",
    ErrorKind.INVALID,
    "号牌号码格式不正确。",
    "The plate number is not valid.",
)
INVALID_PLATE_TYPE = _define(
    "INVALID_PLATE_TYPE",
    ErrorKind.INVALID,
    "号牌种类不正确（应为 01、02、07、51 或 52）。",
    "The plate type is not valid (expected 01, 02, 07, 51 or 52).",
)
INVALID_VIN = _define(
    "INVALID_VIN", ErrorKind.INVALID, "车辆识别代号（车架号）不正确。", "The VIN is not valid."
)
INVALID_ID_NUMBER = _define(
    "INVALID_ID_NUMBER", ErrorKind.INVALID, "身份证号码不正确。", "The ID number is not valid."
)
INVALID_FILE_NO = _define(
    "INVALID_FILE_NO",
    ErrorKind.INVALID,
    "驾驶证档案编号应为 12 位数字。",
    "The licence file number must be 12 digits.",
)
INVALID_DECISION_NO = _define(
    "INVALID_DECISION_NO",
    ErrorKind.INVALID,
    "处罚决定书编号应为 16 位数字。",
    "The penalty decision number must be 16 digits.",
)
INVALID_VIOLATION_CODE = _define(
    "INVALID_VIOLATION_CODE",
    ErrorKind.INVALID,
    "违法代码应为 4 位或 5 位数字。",
    "The violation code must be 4 or 5 digits.",
)
INVALID_LICENCE_CLASS = _define(
    "INVALID_LICENCE_CLASS",
    ErrorKind.INVALID,
    "准驾车型不正确。",
    "The licence class is not valid.",
)

# -- incoming strings (cqcommon.text) ------------------------------------------
INVALID_CHARACTERS = _define(
    "INVALID_CHARACTERS",
    ErrorKind.INVALID,
    "输入包含不允许的字符（控制字符、双向控制符或零宽字符）。",
    "The input contains characters that are not allowed (control, bidirectional or "
    "zero-width characters).",
)

# -- adjudication --------------------------------------------------------------
DECISION_REQUIRED = _define(
    "DECISION_REQUIRED",
    ErrorKind.INVALID,
    "现场处罚的违法记录必须附带处罚决定书编号和日期。",
    "An on-site record must carry its penalty decision number and date.",
)
DECISION_INCOMPLETE = _define(
    "DECISION_INCOMPLETE",
    ErrorKind.INVALID,
    "处罚决定书编号和决定日期须同时提供或同时不提供。",
    "A penalty decision number and its date come together, or neither is given.",
)
INVALID_DECISION_DATE = _define(
    "INVALID_DECISION_DATE",
    ErrorKind.INVALID,
    "处罚决定日期不是有效的日期。",
    "The penalty decision date is not a valid calendar date.",
)
DECISION_DATE_BEFORE_VIOLATION = _define(
    "DECISION_DATE_BEFORE_VIOLATION",
    ErrorKind.INVALID,
    "处罚决定日期不能早于违法日期。",
    "The penalty decision date cannot be before the date of the violation.",
)
DECISION_DATE_IN_FUTURE = _define(
    "DECISION_DATE_IN_FUTURE",
    ErrorKind.INVALID,
    "处罚决定日期不能晚于今天。",
    "The penalty decision date cannot be later than today.",
)
DECISION_NO_CONFLICT = _define(
    "DECISION_NO_CONFLICT",
    ErrorKind.CONFLICT,
    "该处罚决定书编号已用于另一条违法记录。",
    "This penalty decision number is already used by another violation.",
)
OCCURRED_AT_IN_FUTURE = _define(
    "OCCURRED_AT_IN_FUTURE",
    ErrorKind.INVALID,
    "违法时间不能晚于当前时间。",
    "The time of the violation cannot be in the future.",
)
OCCURRED_AT_TOO_EARLY = _define(
    "OCCURRED_AT_TOO_EARLY",
    ErrorKind.INVALID,
    "违法时间早于系统受理的最早日期。",
    "The time of the violation is before the earliest date this system accepts.",
)
TOO_MANY_VIOLATION_IDS = _define(
    "TOO_MANY_VIOLATION_IDS",
    ErrorKind.INVALID,
    "一次查询的违法记录过多。",
    "Too many violations asked about in one request.",
)
INVALID_FINE = _define(
    "INVALID_FINE", ErrorKind.INVALID, "罚款金额不正确。", "The fine amount is not valid."
)
INVALID_VIOLATION_RECORD = _define(
    "INVALID_VIOLATION_RECORD",
    ErrorKind.INVALID,
    "违法记录内容不完整或不正确。",
    "The violation record is incomplete or not valid.",
)
SOURCE_RECORD_CONFLICT = _define(
    "SOURCE_RECORD_CONFLICT",
    ErrorKind.CONFLICT,
    "该来源记录已以不同内容登记。",
    "This source record was already recorded with different content.",
)
VEHICLE_NOT_FOUND = _define(
    "VEHICLE_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该机动车。", "No such vehicle."
)
LICENCE_NOT_FOUND = _define(
    "LICENCE_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该驾驶证。", "No such driving licence."
)
UNKNOWN_VIOLATION_CODE = _define(
    "UNKNOWN_VIOLATION_CODE",
    ErrorKind.INVALID,
    "违法代码不在违法代码表中。",
    "The violation code is not in the catalogue.",
)
VIOLATION_NOT_FOUND = _define(
    "VIOLATION_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该违法记录。", "No such violation."
)

# -- adjudication: eligibility reasons (R-ADJ-1..4, 6, 9, R-X-2) ------------------
# Each rule that refuses online handling is one code here; the adjudication domain builds
# its ``Reason`` (code + Chinese + English sentence) from these specs, so the texts live
# only here. FORBIDDEN: a rule refuses it; CONFLICT: the record's state leaves nothing to
# handle. "Counter" in a sentence is the route the refusal names.
DISPUTED_COUNTER_ONLY = _define(
    "DISPUTED_COUNTER_ONLY",
    ErrorKind.FORBIDDEN,
    "您对该违法事实有异议，不能在线处理，请携带相关材料到交警窗口办理。",
    "This violation is disputed and cannot be handled online; please visit a police "
    "counter with your documents.",
)
ALREADY_DECIDED = _define(
    "ALREADY_DECIDED",
    ErrorKind.CONFLICT,
    "该违法已作出处罚决定，无需再处理，请按决定书缴纳罚款。",
    "A penalty decision has already been issued for this violation; it only needs to be paid.",
)
ALREADY_PAID = _define(
    "ALREADY_PAID",
    ErrorKind.CONFLICT,
    "该违法已处理并缴款完毕。",
    "This violation has been decided and paid; nothing is left to do.",
)
ON_SITE_NOT_ONLINE = _define(
    "ON_SITE_NOT_ONLINE",
    ErrorKind.FORBIDDEN,
    "现场处罚的违法不能在线处理，请到交警窗口办理。",
    "On-site violations cannot be handled online; please visit a police counter.",
)
GENERAL_PROCEDURE_COUNTER_ONLY = _define(
    "GENERAL_PROCEDURE_COUNTER_ONLY",
    ErrorKind.FORBIDDEN,
    "该违法需适用一般程序（如罚款超过 200 元），不能在线处理，请到交警窗口办理。",
    "This violation needs the general procedure (e.g. a fine over 200 yuan) and cannot be "
    "handled online; please visit a police counter.",
)
FINE_OVER_ONLINE_LIMIT = _define(
    "FINE_OVER_ONLINE_LIMIT",
    ErrorKind.FORBIDDEN,
    "该违法的罚款金额超过在线处理限额，请到交警窗口办理。",
    "The fine is above the limit for online handling; please visit a police counter.",
)
NO_LICENCE = _define(
    "NO_LICENCE",
    ErrorKind.FORBIDDEN,
    "您名下没有重庆市核发的驾驶证，不能在线处理违法，请由持证驾驶人处理或到交警窗口办理。",
    "You hold no Chongqing driving licence, so you cannot handle violations online; the "
    "licensed driver can handle it, or visit a police counter.",
)
LICENCE_NOT_VALID_COUNTER_ONLY = _define(
    "LICENCE_NOT_VALID_COUNTER_ONLY",
    ErrorKind.FORBIDDEN,
    "您的驾驶证状态异常（暂扣、吊销或记满分等），不能在线处理违法，请到交警窗口办理。",
    "Your driving licence is not valid (suspended, revoked, points limit reached, …); "
    "violations cannot be handled online with it; please visit a police counter.",
)
NOT_RELATED_TO_VEHICLE = _define(
    "NOT_RELATED_TO_VEHICLE",
    ErrorKind.FORBIDDEN,
    "您不是该车辆的所有人，也未关注或验证该车辆，不能处理该车辆的违法。",
    "You neither own, follow nor have proven this vehicle, so you cannot handle its violations.",
)
AB_CLASS_POINTS_COUNTER_ONLY = _define(
    "AB_CLASS_POINTS_COUNTER_ONLY",
    ErrorKind.FORBIDDEN,
    "持 A 类或 B 类驾驶证的驾驶人不能在线处理记分的违法（不记分的可以），请到交警窗口办理。",
    "Holders of an A- or B-class licence cannot handle point-bearing violations online "
    "(0-point ones they can); please visit a police counter.",
)
POINTS_LIMIT_EXCEEDED = _define(
    "POINTS_LIMIT_EXCEEDED",
    ErrorKind.FORBIDDEN,
    "处理该违法后，本记分周期的累积记分将超过满分，不能在线处理。",
    "Handling this violation would take the licence's points in this scoring cycle past "
    "the limit, so it cannot be handled online.",
)
POINTS_RECENTLY_CHANGED = _define(
    "POINTS_RECENTLY_CHANGED",
    ErrorKind.FORBIDDEN,
    "您的记分近期在窗口或外省发生变动，数据同步中，暂不能在线处理记分的违法，"
    "请稍后再试或到交警窗口办理。",
    "Your points were changed recently at a counter or in another province and are still "
    "being synchronised; point-bearing violations cannot be handled online for now. Try "
    "again later or visit a police counter.",
)
POINTS_BUYING_VEHICLE_LIMIT = _define(
    "POINTS_BUYING_VEHICLE_LIMIT",
    ErrorKind.FORBIDDEN,
    "本记分周期内您的驾驶证为他人车辆处理记分违法的车辆数已达上限，不能再为其他车辆"
    "在线处理，请到交警窗口办理。",
    "In this scoring cycle your licence has already taken points for as many other people's "
    "vehicles as allowed; it cannot take points for another one online. Please visit a "
    "police counter.",
)
POINTS_BUYING_LICENCE_LIMIT = _define(
    "POINTS_BUYING_LICENCE_LIMIT",
    ErrorKind.FORBIDDEN,
    "本记分周期内该车辆的记分由不同驾驶证处理的数量已达上限，不能再由其他驾驶证在线处理，"
    "请到交警窗口办理。",
    "In this scoring cycle this vehicle's points have already gone to as many different "
    "licences as allowed; another licence cannot take them online. Please visit a police "
    "counter.",
)
ELIGIBILITY_NOT_AVAILABLE = _define(
    "ELIGIBILITY_NOT_AVAILABLE",
    ErrorKind.UNAVAILABLE,
    "暂时无法判断能否在线处理，请稍后再试或到交警窗口办理。",
    "Whether this can be handled online cannot be determined yet; "
    "try again later or visit a police counter.",
)

# -- adjudication: face verification (R-ADJ-8) --------------------------------------
# Another handling's or another person's verification answers exactly like a missing one.
VERIFICATION_NOT_FOUND = _define(
    "VERIFICATION_NOT_FOUND",
    ErrorKind.NOT_FOUND,
    "未找到该人脸核验记录。",
    "No such face verification.",
)
VERIFICATION_PENDING = _define(
    "VERIFICATION_PENDING",
    ErrorKind.CONFLICT,
    "人脸核验尚未完成，请先完成人脸核验。",
    "The face verification is not finished yet; complete it first.",
)
VERIFICATION_FAILED = _define(
    "VERIFICATION_FAILED",
    ErrorKind.FORBIDDEN,
    "人脸核验未通过，请重新发起人脸核验。",
    "The face verification did not pass; start a new one.",
)
VERIFICATION_EXPIRED = _define(
    "VERIFICATION_EXPIRED",
    ErrorKind.FORBIDDEN,
    "人脸核验结果已超过有效期，请重新核验。",
    "The face verification has expired; verify again.",
)
VERIFICATION_USED = _define(
    "VERIFICATION_USED",
    ErrorKind.CONFLICT,
    "该人脸核验结果已使用过，不能重复使用。",
    "This face verification has already been used and cannot be used again.",
)
FACE_CERTIFY_ID_INVALID = _define(
    "FACE_CERTIFY_ID_INVALID",
    ErrorKind.FORBIDDEN,
    "人脸核验服务不认可该核验（无效或已失效），请重新发起人脸核验。",
    "The face-verification provider does not recognise this verification (unknown or "
    "expired); start a new one.",
)
FACE_PROVIDER_REFUSED = _define(
    "FACE_PROVIDER_REFUSED",
    ErrorKind.FORBIDDEN,
    "人脸核验服务未能为您发起核验，请到公安交管业务窗口办理。",
    "The face-verification provider could not start a verification for you; please go to a "
    "traffic police counter.",
)
FACE_PROVIDER_UNAVAILABLE = _define(
    "FACE_PROVIDER_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "人脸核验服务暂时不可用，请稍后再试。",
    "The face-verification provider is temporarily unavailable; try again later.",
)
FACE_PROVIDER_ANSWER_UNTRUSTED = _define(
    "FACE_PROVIDER_ANSWER_UNTRUSTED",
    ErrorKind.UNAVAILABLE,
    "无法确认人脸核验服务应答的真实性，请稍后再试。",
    "The face-verification provider's answer could not be authenticated; try again later.",
)

# -- adjudication: handlings, points and decisions (R-ADJ-5, 7) ---------------------
ALREADY_HANDLED = _define(
    "ALREADY_HANDLED",
    ErrorKind.CONFLICT,
    "该违法已被处理，不能重复处理。",
    "This violation has already been handled; it cannot be handled twice.",
)
HANDLING_NOT_FOUND = _define(
    "HANDLING_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该处理记录。", "No such handling."
)
HANDLING_STEP_UNKNOWN = _define(
    "HANDLING_STEP_UNKNOWN",
    ErrorKind.INVALID,
    "该处理没有这一人脸验证步骤。",
    "This handling has no such face-verification step.",
)
HANDLING_OWNER_STEP_FIRST = _define(
    "HANDLING_OWNER_STEP_FIRST",
    ErrorKind.CONFLICT,
    "须先完成车主的人脸验证，再进行处理人的人脸验证。",
    "The owner's face verification must pass before the handler's.",
)
HANDLING_RELATIONS_UNAVAILABLE = _define(
    "HANDLING_RELATIONS_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "暂时无法确认您与该车辆的关系，请稍后再试。",
    "Your relation to this vehicle cannot be checked right now; please try again later.",
)
HANDLING_IDENTITY_UNAVAILABLE = _define(
    "HANDLING_IDENTITY_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "暂时无法取得人脸验证所需的身份信息，请稍后再试或到交警窗口办理。",
    "The identity a face verification needs is not available yet; try again later or "
    "visit a police counter.",
)
DISPUTE_NOT_ALLOWED = _define(
    "DISPUTE_NOT_ALLOWED",
    ErrorKind.CONFLICT,
    "已缴款的违法记录不能标记为有异议。",
    "A paid violation cannot be marked as disputed.",
)
DECISION_NOTICE_NOT_FOUND = _define(
    "DECISION_NOTICE_NOT_FOUND",
    ErrorKind.NOT_FOUND,
    "未找到该处罚决定书，请核对决定书编号。",
    "No penalty decision has this number; check it.",
)

# -- payment (R-PAY-1..9) ------------------------------------------------------
DECISION_NOT_FOUND = _define(
    "DECISION_NOT_FOUND",
    ErrorKind.NOT_FOUND,
    "未找到该处罚决定书，请核对编号；刚作出的决定可能需要几分钟才能缴款。",
    "No penalty decision has this number; check it (a decision just issued may take a few"
    " minutes to become payable).",
)
DECISION_NOT_PAYABLE_HERE = _define(
    "DECISION_NOT_PAYABLE_HERE",
    ErrorKind.FORBIDDEN,
    "该决定书不是重庆市公安交通管理部门作出的，请到作出决定的地方缴款（当地交警窗口或当地缴费渠道）。",
    "This decision was not issued by a Chongqing authority; pay it where it was issued (that"
    " region's counter or payment channels).",
)
DECISION_DISPUTED = _define(
    "DECISION_DISPUTED",
    ErrorKind.CONFLICT,
    "该违法存在异议，异议处理完毕前不能缴款，请到交警窗口办理。",
    "This violation is disputed; it cannot be paid until the dispute is cleared at a counter.",
)
PAYMENT_IN_PROGRESS = _define(
    "PAYMENT_IN_PROGRESS",
    ErrorKind.CONFLICT,
    "该决定书已有一笔缴款正在进行，请先完成或等待其结束。",
    "A payment of this decision is already in progress; finish it or wait until it ends.",
)
PAYMENT_NOT_FOUND = _define(
    "PAYMENT_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该缴款记录。", "No such payment."
)
PAYMENT_PROVIDER_REFUSED = _define(
    "PAYMENT_PROVIDER_REFUSED",
    ErrorKind.CONFLICT,
    "支付宝拒绝创建该笔交易，未发生扣款，请稍后重试。",
    "Alipay refused to create the trade; nothing was charged. Try again later.",
)
INVALID_PAYMENT_METHOD = _define(
    "INVALID_PAYMENT_METHOD",
    ErrorKind.INVALID,
    "窗口缴款方式应为 cash（现金）或 card（银行卡）。",
    "The counter payment method must be cash or card.",
)
IDEMPOTENCY_KEY_REQUIRED = _define(
    "IDEMPOTENCY_KEY_REQUIRED",
    ErrorKind.INVALID,
    "缺少 Idempotency-Key 请求头：创建缴款必须带上幂等键。",
    "The Idempotency-Key header is required to create a payment.",
)
IDEMPOTENCY_KEY_INVALID = _define(
    "IDEMPOTENCY_KEY_INVALID",
    ErrorKind.INVALID,
    "Idempotency-Key 应为 1 至 255 个可见 ASCII 字符。",
    "The Idempotency-Key must be 1 to 255 visible ASCII characters.",
)
IDEMPOTENCY_KEY_REUSED = _define(
    "IDEMPOTENCY_KEY_REUSED",
    ErrorKind.INVALID,
    "该 Idempotency-Key 已用于另一个不同的请求，请为新请求使用新的键。",
    "This Idempotency-Key was used for a different request; use a new key for a new request.",
)
IDEMPOTENCY_KEY_IN_USE = _define(
    "IDEMPOTENCY_KEY_IN_USE",
    ErrorKind.CONFLICT,
    "使用该 Idempotency-Key 的请求仍在处理中，请稍后重试。",
    "A request with this Idempotency-Key is still being processed; retry shortly.",
)
MAINTENANCE_WINDOW = _define(
    "MAINTENANCE_WINDOW",
    ErrorKind.UNAVAILABLE,
    "每日 22:00 至次日 00:30 为系统维护时间，暂停缴款，请在 00:30 之后再试。",
    "Payments are paused for maintenance from 22:00 to 00:30 (Beijing time); try again"
    " after 00:30.",
)
RECEIPT_NOT_AVAILABLE = _define(
    "RECEIPT_NOT_AVAILABLE",
    ErrorKind.CONFLICT,
    "该笔缴款尚未成功，暂无缴款凭证。",
    "This payment has not succeeded, so it has no receipt.",
)
FEEDBACK_LIMIT_REACHED = _define(
    "FEEDBACK_LIMIT_REACHED",
    ErrorKind.RATE_LIMITED,
    "该笔缴款的反馈次数已达上限，工作人员会尽快处理。",
    "This payment has received the most feedback allowed; staff will look into it.",
)
REFUND_NOT_FOUND = _define(
    "REFUND_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该退款记录。", "No such refund."
)
REFUND_NOT_PENDING = _define(
    "REFUND_NOT_PENDING",
    ErrorKind.CONFLICT,
    "该退款不在待审批状态。",
    "This refund is not awaiting approval.",
)
SUPERVISOR_REQUIRED = _define(
    "SUPERVISOR_REQUIRED",
    ErrorKind.FORBIDDEN,
    "该操作需要主管权限。",
    "This action needs a supervisor.",
)
UNKNOWN_JOB = _define(
    "UNKNOWN_JOB", ErrorKind.INVALID, "没有这个作业。", "There is no job of this name."
)


# -- vehicle follow (R-FOL-1..8, R-SMS-1..3, R-X-3) --------------------------------
FOLLOW_VEHICLE_NOT_FOUND = _define(
    "FOLLOW_VEHICLE_NOT_FOUND",
    ErrorKind.NOT_FOUND,
    "没有找到与号牌种类、号牌号码和车架号相符的重庆机动车，请核对后重试。",
    "No Chongqing vehicle matches this plate type, plate number and VIN; check them.",
)
FOLLOW_LICENCE_NOT_FOUND = _define(
    "FOLLOW_LICENCE_NOT_FOUND",
    ErrorKind.NOT_FOUND,
    "没有找到与姓名、驾驶证号和档案编号相符的驾驶证，请核对后重试。",
    "No driving licence matches this name, licence number and file number; check them.",
)
FOLLOW_OWN_VEHICLE = _define(
    "FOLLOW_OWN_VEHICLE",
    ErrorKind.FORBIDDEN,
    "这是您本人的车辆，无需关注，可在“我的车辆”中查看。",
    "This is your own vehicle; it is already under 'my vehicles'.",
)
FOLLOW_OWN_LICENCE = _define(
    "FOLLOW_OWN_LICENCE",
    ErrorKind.FORBIDDEN,
    "这是您本人的驾驶证，无需关注。",
    "This is your own driving licence; there is no need to follow it.",
)
ALREADY_FOLLOWING = _define(
    "ALREADY_FOLLOWING",
    ErrorKind.CONFLICT,
    "您已关注该车辆或驾驶证，或已有一个待处理的关注申请。",
    "You already follow this, or a request to follow it is waiting.",
)
FOLLOW_QUOTA_EXCEEDED = _define(
    "FOLLOW_QUOTA_EXCEEDED",
    ErrorKind.RATE_LIMITED,
    "已达到关注数量上限。",
    "A follow limit has been reached.",
)
FOLLOW_NO_CONSENT_ROUTE = _define(
    "FOLLOW_NO_CONSENT_ROUTE",
    ErrorKind.CONFLICT,
    "车主未使用本平台且没有登记手机号，无法征得车主同意，请车主到交警窗口办理。",
    "The owner is not on the platform and has no phone on record, so consent cannot be"
    " asked; the owner can give it at a police counter.",
)
FOLLOW_REQUEST_NOT_FOUND = _define(
    "FOLLOW_REQUEST_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该关注申请。", "No such follow request."
)
FOLLOW_REQUEST_NOT_PENDING = _define(
    "FOLLOW_REQUEST_NOT_PENDING",
    ErrorKind.CONFLICT,
    "该关注申请已处理、已过期或已失效。",
    "This follow request has already been decided, has expired or is void.",
)
FOLLOW_NOT_FOUND = _define(
    "FOLLOW_NOT_FOUND", ErrorKind.NOT_FOUND, "未找到该关注记录。", "No such follow."
)
SMS_CODE_WRONG = _define(
    "SMS_CODE_WRONG",
    ErrorKind.INVALID,
    "验证码不正确。",
    "The verification code is wrong.",
)
SMS_CODE_EXPIRED = _define(
    "SMS_CODE_EXPIRED",
    ErrorKind.CONFLICT,
    "验证码已过期或已失效，请重新申请关注以获取新的验证码。",
    "The verification code has expired or is void; ask again to get a new one.",
)
SMS_RESEND_TOO_SOON = _define(
    "SMS_RESEND_TOO_SOON",
    ErrorKind.RATE_LIMITED,
    "验证码发送过于频繁，请 60 秒后再试。",
    "A code was sent to this phone less than 60 seconds ago; try again shortly.",
)
SMS_PHONE_LOCKED = _define(
    "SMS_PHONE_LOCKED",
    ErrorKind.RATE_LIMITED,
    "该手机号今日接收验证码次数已超过限定次数，已被锁定，请明天再试。",
    "This phone has received too many codes today and is locked until tomorrow.",
)
SMS_UNAVAILABLE = _define(
    "SMS_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "短信服务暂时不可用，请稍后再试。",
    "The SMS service is temporarily unavailable; try again later.",
)
SANDBOX_ONLY = _define(
    "SANDBOX_ONLY",
    ErrorKind.NOT_FOUND,
    "该功能仅在沙箱模式下提供。",
    "This exists in sandbox mode only.",
)


# -- query ---------------------------------------------------------------------
# R-Q-3: the reason of an ``unknown`` online-handling hint when adjudication gave no answer
# (a hint, never an error response: the read itself succeeds).
ELIGIBILITY_UNAVAILABLE = _define(
    "ELIGIBILITY_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "处理资格服务暂时不可用，请稍后再试。",
    "The eligibility service is unavailable; try again later.",
)

# -- registry ------------------------------------------------------------------
REGISTRY_ID_CONFLICT = _define(
    "REGISTRY_ID_CONFLICT",
    ErrorKind.CONFLICT,
    "固定编号与登记库已分配的编号不一致，本批记录均未导入。",
    "A pinned id disagrees with the id the registry already holds; nothing was imported.",
)

# -- gateway -------------------------------------------------------------------
METHOD_NOT_ALLOWED = _define(
    "METHOD_NOT_ALLOWED",
    ErrorKind.INVALID,
    "不支持该请求方法。",
    "The HTTP method is not allowed for this path.",
)
AUTH_CODE_INVALID = _define(
    "AUTH_CODE_INVALID",
    ErrorKind.UNAUTHENTICATED,
    "支付宝授权码无效或已过期，请重新授权。",
    "The Alipay authorisation code is invalid or has expired.",
)
ALIPAY_UNAVAILABLE = _define(
    "ALIPAY_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "支付宝服务暂时不可用，请稍后再试。",
    "Alipay is temporarily unavailable; try again later.",
)
STAFF_LOGIN_FAILED = _define(
    "STAFF_LOGIN_FAILED",
    ErrorKind.UNAUTHENTICATED,
    "用户名或密码错误。",
    "Wrong username or password.",
)
AUDIT_UNAVAILABLE = _define(
    "AUDIT_UNAVAILABLE",
    ErrorKind.UNAVAILABLE,
    "审计记录暂时无法写入，请求未执行完成，请稍后再试。",
    "The audit trail cannot be written right now; try again later.",
)
