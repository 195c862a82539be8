"""Follows and follow requests, in the domain's words (R-FOL-1..8, R-X-3).

A user asks to follow someone else's vehicle by proving it (plate type, plate number, VIN,
R-FOL-1). The owner consents in the app when they use it, otherwise by reading out an SMS
code sent to their phone on record (R-FOL-2). Once consent is given the follow becomes
*active*: that spends one of the follower's chances of the calendar year (Asia/Shanghai)
and takes one of their active slots and one of the vehicle's follower slots (R-FOL-3/4).
A follow authorised by SMS lapses after a year (R-FOL-5); the follower may unfollow and the
owner may revoke at any time (R-FOL-7). Licence follows need no consent, only the three
facts of the licence, and have their own limit (R-FOL-8).

Who follows is a *follower key*: ``user:<alipay user id>`` for a mini-program user, or
``person:<uuid>`` for a roster person the sandbox seeds without a user. Quotas count per key.
"""

from __future__ import annotations

import enum
import hmac
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cqcommon.clock import SHANGHAI
from cqcommon.errors import FOLLOW_QUOTA_EXCEEDED, DomainError
from cqcommon.identifiers import vin_matches
from cqcommon.masking import mask_name, mask_phone, mask_plate


class Target(enum.StrEnum):
    VEHICLE = "vehicle"
    LICENCE = "licence"


class Consent(enum.StrEnum):
    OWNER_APP = "owner_app"  # the owner approved in the app
    SMS = "sms"  # the owner read out an SMS code (R-FOL-5: lapses after a year)
    NONE = "none"  # licence follows (R-FOL-8)


class EndReason(enum.StrEnum):
    UNFOLLOWED = "unfollowed"
    REVOKED = "revoked"
    EXPIRED = "expired"


class RequestState(enum.StrEnum):
    PENDING_OWNER_APPROVAL = "pending_owner_approval"
    PENDING_SMS_CODE = "pending_sms_code"
    APPROVED = "approved"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the code was voided by wrong entries, or a quota filled up

    @property
    def pending(self) -> bool:
        return self in (RequestState.PENDING_OWNER_APPROVAL, RequestState.PENDING_SMS_CODE)


def user_key(user_id: str) -> str:
    """The follower key of a mini-program user."""
    return f"user:{user_id}"


def person_key(person_id: str) -> str:
    """The follower key of a registry person without a user (sandbox seeding only)."""
    return f"person:{person_id}"


def follower_key_of(*, user_id: str | None, person_id: str | None) -> str:
    """A user is keyed by their user id whenever they have one, so a seeded follow of a
    roster person with a user counts against the quotas that user sees."""
    if user_id:
        return user_key(user_id)
    if person_id:
        return person_key(person_id)
    raise ValueError("a follower needs a user id or a person id")


@dataclass(frozen=True)
class Follow:
    follow_id: str
    follower_key: str
    follower_user_id: str | None
    follower_person_id: str | None
    target: Target
    vehicle_id: str | None
    licence_id: str | None
    consent: Consent
    started_at: datetime
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    request_id: str | None = None

    def active_at(self, now: datetime) -> bool:
        """Not ended and not lapsed (R-FOL-5: an expired SMS follow grants nothing even
        before the nightly job ends it)."""
        return self.ended_at is None and (self.expires_at is None or self.expires_at > now)

    def ended(self, *, reason: EndReason, at: datetime) -> Follow:
        return Follow(
            follow_id=self.follow_id,
            follower_key=self.follower_key,
            follower_user_id=self.follower_user_id,
            follower_person_id=self.follower_person_id,
            target=self.target,
            vehicle_id=self.vehicle_id,
            licence_id=self.licence_id,
            consent=self.consent,
            started_at=self.started_at,
            expires_at=self.expires_at,
            ended_at=at,
            end_reason=reason,
            request_id=self.request_id,
        )


@dataclass(frozen=True)
class FollowRequest:
    request_id: str
    requester_user_id: str
    requester_person_id: str | None
    vehicle_id: str
    owner_person_id: str
    consent: Consent
    state: RequestState
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    follow_id: str | None = None
    sms_phone_masked: str | None = None
    sms_resend_at: datetime | None = None

    def pending_at(self, now: datetime) -> bool:
        """Waiting for the owner or the code, and not yet expired."""
        return self.state.pending and self.expires_at > now

    def lapsed_at(self, now: datetime) -> bool:
        """Still marked pending but past its expiry (the job has not come by yet)."""
        return self.state.pending and self.expires_at <= now


def new_request(
    *,
    request_id: str,
    requester_user_id: str,
    requester_person_id: str | None,
    vehicle_id: str,
    owner_person_id: str,
    consent: Consent,
    now: datetime,
    ttl: timedelta,
    sms_phone: str | None = None,
    sms_resend_at: datetime | None = None,
) -> FollowRequest:
    """A new request waiting for the owner (``OWNER_APP``) or the code (``SMS``)."""
    state = (
        RequestState.PENDING_SMS_CODE
        if consent is Consent.SMS
        else RequestState.PENDING_OWNER_APPROVAL
    )
    return FollowRequest(
        request_id=request_id,
        requester_user_id=requester_user_id,
        requester_person_id=requester_person_id,
        vehicle_id=vehicle_id,
        owner_person_id=owner_person_id,
        consent=consent,
        state=state,
        created_at=now,
        expires_at=now + ttl,
        sms_phone_masked=mask_phone(sms_phone) if sms_phone else None,
        sms_resend_at=sms_resend_at,
    )


def decided(
    request: FollowRequest, state: RequestState, *, at: datetime, follow_id: str | None = None
) -> FollowRequest:
    """The request after its outcome: approved (with its follow), declined, expired or
    cancelled. The SMS resend time goes: no code is out any more."""
    return FollowRequest(
        request_id=request.request_id,
        requester_user_id=request.requester_user_id,
        requester_person_id=request.requester_person_id,
        vehicle_id=request.vehicle_id,
        owner_person_id=request.owner_person_id,
        consent=request.consent,
        state=state,
        created_at=request.created_at,
        expires_at=request.expires_at,
        decided_at=at,
        follow_id=follow_id,
        sms_phone_masked=request.sms_phone_masked,
        sms_resend_at=None,
    )


# -- quotas (R-FOL-3, R-FOL-4, R-FOL-8) ----------------------------------------------------
class Quota(enum.StrEnum):
    ACTIVE_VEHICLE_FOLLOWS = "active_vehicle_follows"
    CHANCES_THIS_YEAR = "chances_this_year"
    VEHICLE_FOLLOWERS = "vehicle_followers"
    LICENCE_FOLLOWS = "licence_follows"


_QUOTA_MESSAGES: dict[Quota, tuple[str, str]] = {
    Quota.ACTIVE_VEHICLE_FOLLOWS: (
        "您同时关注他人车辆的数量已达上限（{limit} 辆），请先取消一个关注后再试。",
        "You already follow {limit} other people's vehicles, the most at once; unfollow one first.",
    ),
    Quota.CHANCES_THIS_YEAR: (
        "您本年度的 {limit} 次关注机会已用完（取消关注不退还机会），请明年再试。",
        "You have used all {limit} follow chances of this calendar year (unfollowing does not"
        " give one back).",
    ),
    Quota.VEHICLE_FOLLOWERS: (
        "该车辆的关注人数已达上限（{limit} 人）。",
        "This vehicle already has {limit} followers, the most it may have at once.",
    ),
    Quota.LICENCE_FOLLOWS: (
        "您关注的驾驶证数量已达上限（{limit} 本），请先取消一个关注后再试。",
        "You already follow {limit} driving licences, the most at once; unfollow one first.",
    ),
}


def quota_exceeded(quota: Quota, *, limit: int, used: int) -> DomainError:
    """FOLLOW_QUOTA_EXCEEDED naming the quota that refused, with its limit and use."""
    zh, en = _QUOTA_MESSAGES[quota]
    return DomainError(
        FOLLOW_QUOTA_EXCEEDED,
        details={"quota": quota.value, "limit": limit, "used": used},
        message_zh=zh.format(limit=limit),
        message_en=en.format(limit=limit),
    )


@dataclass(frozen=True)
class QuotaLimits:
    #: R-FOL-3: other people's vehicles one follower follows at once
    max_active: int = 2
    #: R-FOL-3: vehicle follows that may become active per calendar year (Asia/Shanghai)
    chances_per_year: int = 3
    #: R-FOL-4: followers of one vehicle at once
    vehicle_max_followers: int = 3
    #: R-FOL-8: licences one follower follows at once
    licence_follow_limit: int = 5


@dataclass(frozen=True)
class VehicleQuotaUse:
    """What one more vehicle follow would add to: counted under the follower's and the
    vehicle's locks in the activating transaction (R-FOL-6)."""

    active: int  # the follower's active vehicle follows
    chances_used: int  # the follower's vehicle follows started this calendar year
    vehicle_followers: int  # the vehicle's active followers


def check_vehicle_quotas(limits: QuotaLimits, use: VehicleQuotaUse) -> None:
    """Refuse one more vehicle follow that would go over any quota, naming the first."""
    if use.active >= limits.max_active:
        raise quota_exceeded(Quota.ACTIVE_VEHICLE_FOLLOWS, limit=limits.max_active, used=use.active)
    if use.chances_used >= limits.chances_per_year:
        raise quota_exceeded(
            Quota.CHANCES_THIS_YEAR, limit=limits.chances_per_year, used=use.chances_used
        )
    if use.vehicle_followers >= limits.vehicle_max_followers:
        raise quota_exceeded(
            Quota.VEHICLE_FOLLOWERS,
            limit=limits.vehicle_max_followers,
            used=use.vehicle_followers,
        )


def check_licence_quota(limits: QuotaLimits, active_licence_follows: int) -> None:
    if active_licence_follows >= limits.licence_follow_limit:
        raise quota_exceeded(
            Quota.LICENCE_FOLLOWS,
            limit=limits.licence_follow_limit,
            used=active_licence_follows,
        )


def year_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The calendar year (Asia/Shanghai) ``now`` falls in, as [start, end) instants: the
    window in which follows that became active spend that year's chances (R-FOL-3)."""
    local = now.astimezone(SHANGHAI)
    start = datetime(local.year, 1, 1, tzinfo=SHANGHAI)
    end = datetime(local.year + 1, 1, 1, tzinfo=SHANGHAI)
    return start, end


@dataclass(frozen=True)
class QuotaOverview:
    """A follower's quota use as ``GET /api/v1/follows`` shows it."""

    active: int
    max_active: int
    chances_left_this_year: int
    chances_per_year: int
    licence_follows: int
    max_licence_follows: int


def overview(
    limits: QuotaLimits, *, active: int, chances_used: int, licence_follows: int
) -> QuotaOverview:
    return QuotaOverview(
        active=active,
        max_active=limits.max_active,
        chances_left_this_year=max(0, limits.chances_per_year - chances_used),
        chances_per_year=limits.chances_per_year,
        licence_follows=licence_follows,
        max_licence_follows=limits.licence_follow_limit,
    )


# -- proofs (R-FOL-1, R-FOL-8), compared in constant time ------------------------------------
#: Compared against when no record holds the plate or the licence number, so that "no such
#: vehicle" and "wrong VIN" do the same work and answer the same error.
_DUMMY_VIN = "LSVAA4180E2000000"
_DUMMY_TEXT = "-" * 18


@dataclass(frozen=True)
class VehicleRecord:
    """A vehicle of the registry copy with its owner (one query joins them)."""

    vehicle_id: str
    plate_type: str
    plate_number: str
    vin: str
    owner_person_id: str
    owner_name: str | None = None
    owner_phone: str | None = None
    owner_user_id: str | None = None

    @property
    def owner_on_platform(self) -> bool:
        """R-FOL-2: the owner uses the mini-program, so they consent in the app."""
        return bool(self.owner_user_id)

    @property
    def owner_known(self) -> bool:
        """Whether the owner's person record has reached the copy: the registry's vehicle
        event can overtake the person's, and until both are here the consent route (app or
        SMS to the phone on record) cannot be decided."""
        return self.owner_name is not None


@dataclass(frozen=True)
class PersonRecord:
    person_id: str
    name: str
    phone: str | None = None
    alipay_user_id: str | None = None


@dataclass(frozen=True)
class LicenceRecord:
    licence_id: str
    person_id: str
    licence_no: str
    file_no: str
    holder_name: str
    holder_user_id: str | None = None


def match_vehicle(candidates: Sequence[VehicleRecord], vin_proof: str) -> VehicleRecord | None:
    """The vehicle among those holding the plate whose VIN the proof matches (the full VIN
    or its last 6), compared in constant time. Every candidate is compared, and one dummy
    when there is none, so the answer takes the same path either way."""
    found: VehicleRecord | None = None
    for vehicle in candidates:
        if vin_matches(vehicle.vin, vin_proof) and found is None:
            found = vehicle
    if not candidates:
        vin_matches(_DUMMY_VIN, vin_proof)
    return found


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def normalise_name(raw: str) -> str:
    """A person's name as compared: NFKC, no whitespace (``张 伟`` is ``张伟``)."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace())


def match_licence(
    record: LicenceRecord | None, *, name: str, licence_no: str, file_no: str
) -> LicenceRecord | None:
    """R-FOL-8: the licence when name, licence number and file number all match. All three
    are compared every time (constant-time, no short cut), against dummies when no licence
    has the number, so no answer tells which fact was wrong."""
    stored = record or LicenceRecord("", "", _DUMMY_TEXT, _DUMMY_TEXT, _DUMMY_TEXT)
    results = (
        _same(normalise_name(stored.holder_name), normalise_name(name)),
        _same(stored.licence_no, licence_no),
        _same(stored.file_no, file_no),
    )
    return record if record is not None and all(results) else None


# -- what each party sees (R-Q-4, R-X-3) -----------------------------------------------------
@dataclass(frozen=True)
class RequestRow:
    """A request with what its views show, as stored (unmasked)."""

    request: FollowRequest
    plate_number: str
    plate_type: str
    requester_name: str | None


@dataclass(frozen=True)
class RequestView:
    request: FollowRequest
    plate_number: str
    plate_type: str
    requester_name_masked: str


def requester_view(row: RequestRow) -> RequestView:
    """The requester's view: the plate masked until the follow is active (R-Q-4)."""
    plate = (
        row.plate_number
        if row.request.state is RequestState.APPROVED
        else mask_plate(row.plate_number)
    )
    return RequestView(row.request, plate, row.plate_type, mask_name(row.requester_name or ""))


def owner_view(row: RequestRow) -> RequestView:
    """The owner's view: their own plate whole, the requester's name masked."""
    return RequestView(
        row.request, row.plate_number, row.plate_type, mask_name(row.requester_name or "")
    )


@dataclass(frozen=True)
class FollowRow:
    """A follow with the plate of its vehicle or the holder of its licence (unmasked)."""

    follow: Follow
    plate_number: str = ""
    plate_type: str = ""
    licence_holder_name: str = ""


@dataclass(frozen=True)
class FollowView:
    follow: Follow
    plate_number: str
    plate_type: str
    licence_holder_name_masked: str


def follower_view(row: FollowRow) -> FollowView:
    """The follower's view of their follow: the plate they proved, the holder masked."""
    return FollowView(
        row.follow, row.plate_number, row.plate_type, mask_name(row.licence_holder_name)
    )


@dataclass(frozen=True)
class FollowerRow:
    """An active follow of one of an owner's vehicles (unmasked)."""

    follow: Follow
    plate_number: str
    follower_name: str | None


@dataclass(frozen=True)
class FollowerView:
    follow: Follow
    plate_number: str
    follower_name_masked: str


def owner_follower_view(row: FollowerRow) -> FollowerView:
    """R-X-3: the owner sees who follows (name masked) and since when."""
    return FollowerView(row.follow, row.plate_number, mask_name(row.follower_name or ""))
