"""The follow domain's pure rules: quota checks name their quota (R-FOL-3/4/8), the proofs
compare in constant time and answer alike for "missing" and "wrong" (R-FOL-1/8), and each
party sees what R-Q-4 allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cqcommon.errors import DomainError
from cqcommon.identifiers import with_vin_check_digit
from cqfollow.domain.callers import Caller, require_sandbox_staff, require_user
from cqfollow.domain.follows import (
    Consent,
    EndReason,
    Follow,
    FollowRequest,
    LicenceRecord,
    Quota,
    QuotaLimits,
    RequestRow,
    RequestState,
    Target,
    VehicleQuotaUse,
    VehicleRecord,
    check_licence_quota,
    check_vehicle_quotas,
    decided,
    follower_key_of,
    match_licence,
    match_vehicle,
    new_request,
    overview,
    owner_view,
    requester_view,
)

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
VIN = with_vin_check_digit("LSVAU2180N2183294")


def car(vehicle_id: str = "v1", vin: str = VIN) -> VehicleRecord:
    return VehicleRecord(vehicle_id, "02", "渝A67890", vin, "owner")


@pytest.mark.parametrize(
    ("use", "quota", "limit", "used"),
    [
        (VehicleQuotaUse(2, 2, 0), Quota.ACTIVE_VEHICLE_FOLLOWS, 2, 2),
        (VehicleQuotaUse(1, 3, 0), Quota.CHANCES_THIS_YEAR, 3, 3),
        (VehicleQuotaUse(0, 0, 3), Quota.VEHICLE_FOLLOWERS, 3, 3),
        (VehicleQuotaUse(5, 5, 5), Quota.ACTIVE_VEHICLE_FOLLOWS, 2, 5),  # the first one named
    ],
)
def test_r_fol_3_4_every_refusal_names_its_quota(
    use: VehicleQuotaUse, quota: Quota, limit: int, used: int
) -> None:
    with pytest.raises(DomainError) as info:
        check_vehicle_quotas(QuotaLimits(), use)
    e = info.value
    assert (e.code, e.details) == (
        "FOLLOW_QUOTA_EXCEEDED",
        {"quota": quota.value, "limit": limit, "used": used},
    )
    assert str(limit) in e.message_zh and str(limit) in e.message_en
    assert e.message_en != "A follow limit has been reached."  # names the quota


def test_r_fol_3_4_within_quota_passes() -> None:
    check_vehicle_quotas(QuotaLimits(), VehicleQuotaUse(1, 2, 2))
    check_licence_quota(QuotaLimits(), 4)
    with pytest.raises(DomainError) as info:
        check_licence_quota(QuotaLimits(licence_follow_limit=5), 5)
    assert info.value.details["quota"] == "licence_follows"


def test_r_fol_3_overview_never_shows_negative_chances() -> None:
    o = overview(QuotaLimits(), active=2, chances_used=4, licence_follows=1)
    assert (o.active, o.max_active, o.chances_left_this_year, o.chances_per_year) == (2, 2, 0, 3)


def test_r_fol_1_vin_proof_last_6_or_full_and_nothing_else() -> None:
    assert match_vehicle([car()], VIN[-6:]) == car()
    assert match_vehicle([car()], VIN) == car()
    assert match_vehicle([car()], VIN[-7:]) is None
    assert match_vehicle([car()], "000000") is None
    assert match_vehicle([], VIN[-6:]) is None
    other = car("v2", with_vin_check_digit("LFV2A21K5G3041235"))
    assert match_vehicle([other, car()], VIN[-6:]) == car()


def test_r_fol_8_licence_proof_needs_all_three() -> None:
    lic = LicenceRecord("l1", "p1", "500108199009099525", "500100123456", "赵敏")
    facts = {"name": "赵 敏", "licence_no": "500108199009099525", "file_no": "500100123456"}
    assert match_licence(lic, **facts) == lic
    for field, wrong in (("name", "赵明"), ("licence_no", "x"), ("file_no", "500100123457")):
        assert match_licence(lic, **(facts | {field: wrong})) is None
    assert match_licence(None, **facts) is None


def test_follower_keys() -> None:
    assert follower_key_of(user_id="2088", person_id="p") == "user:2088"
    assert follower_key_of(user_id=None, person_id="p") == "person:p"
    with pytest.raises(ValueError):
        follower_key_of(user_id=None, person_id=None)


def test_r_fol_5_only_unexpired_unended_follows_are_active() -> None:
    f = Follow(
        "f",
        "user:1",
        "1",
        None,
        Target.VEHICLE,
        "v",
        None,
        Consent.SMS,
        NOW,
        NOW + timedelta(days=1),
    )
    assert f.active_at(NOW) and not f.active_at(NOW + timedelta(days=1))
    assert not f.ended(reason=EndReason.REVOKED, at=NOW).active_at(NOW)


def _request(state: RequestState = RequestState.PENDING_OWNER_APPROVAL) -> FollowRequest:
    r = new_request(
        request_id="r",
        requester_user_id="2088",
        requester_person_id="p",
        vehicle_id="v",
        owner_person_id="o",
        consent=Consent.SMS,
        now=NOW,
        ttl=timedelta(hours=72),
        sms_phone="13900000005",
    )
    return r if state is RequestState.PENDING_SMS_CODE else decided(r, state, at=NOW, follow_id="f")


def test_requests_pend_until_they_expire() -> None:
    r = _request(RequestState.PENDING_SMS_CODE)
    assert (r.state, r.sms_phone_masked) == (RequestState.PENDING_SMS_CODE, "139****0005")
    assert r.pending_at(NOW + timedelta(hours=71)) and r.lapsed_at(NOW + timedelta(hours=72))
    assert not _request(RequestState.APPROVED).pending_at(NOW)


def test_r_q_4_the_requester_sees_the_plate_masked_until_approved_the_owner_whole() -> None:
    waiting = RequestRow(_request(RequestState.PENDING_SMS_CODE), "渝C34567", "02", "刘洋")
    assert requester_view(waiting).plate_number == "渝C***67"
    assert owner_view(waiting).plate_number == "渝C34567"
    assert owner_view(waiting).requester_name_masked == "刘*"
    approved = RequestRow(_request(RequestState.APPROVED), "渝C34567", "02", None)
    assert requester_view(approved).plate_number == "渝C34567"
    assert requester_view(approved).requester_name_masked == ""


def test_callers() -> None:
    assert require_user(Caller(user_id="2088")) == "2088"
    for caller in (Caller(), Caller(user_id="2088", staff_id="clerk01")):
        with pytest.raises(DomainError) as info:
            require_user(caller)
        assert info.value.code == "FORBIDDEN"
    assert require_sandbox_staff(Caller(staff_id="clerk01"), sandbox_mode=True) == "clerk01"
    for caller, sandbox in ((Caller(staff_id="c"), False), (Caller(user_id="u"), True)):
        with pytest.raises(DomainError) as info:
            require_sandbox_staff(caller, sandbox_mode=sandbox)
        assert info.value.code == "SANDBOX_ONLY"
