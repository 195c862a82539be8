"""Unit tests of the shared R-Q-4 masking (cqcommon.masking): who sees a person in full,
and the masks of persons, VINs, file numbers and plates. The character-level masks of
ID numbers, phones and names are tested with their formats in test_identifiers.py."""

from __future__ import annotations

import pytest
from cqcommon import identifiers
from cqcommon.masking import (
    Person,
    mask_file_no,
    mask_id_number,
    mask_name,
    mask_person,
    mask_phone,
    mask_plate,
    mask_vin,
    person_for,
    person_or_none,
    sees_in_full,
)
from hypothesis import given
from hypothesis import strategies as st

OWNER = Person("p-owner", "张伟", "500101199001011234", "13900005678")


def test_own_data_and_staff_are_unmasked_r_q_4() -> None:
    """R-Q-4: the person's own data and counter staff see everything."""
    assert person_for(OWNER, caller_person_id="p-owner", is_staff=False) == OWNER
    assert person_for(OWNER, caller_person_id="", is_staff=True) == OWNER


def test_everyone_else_sees_masked_id_phone_and_name_r_q_4() -> None:
    """R-Q-4: 5001**********1234, 139****5678, 张*."""
    shown = person_for(OWNER, caller_person_id="p-other", is_staff=False)
    assert shown.id_number == "5001**********1234"
    assert shown.phone == "139****5678"
    assert shown.name == "张*"
    assert shown.person_id == OWNER.person_id
    assert mask_person(OWNER) == shown


def test_a_caller_without_a_person_never_counts_as_the_owner_r_q_4() -> None:
    """R-Q-4 / R-USR-1: an empty person id must not match a record without an owner."""
    assert not sees_in_full(subject_person_id="", caller_person_id="", is_staff=False)
    assert not sees_in_full(subject_person_id=None, caller_person_id="", is_staff=False)
    masked = person_for(
        Person("", "李娜", "500101199001011234", "13900005678"),
        caller_person_id="",
        is_staff=False,
    )
    assert masked.name == "李*"


def test_person_or_none_r_q_4() -> None:
    assert person_or_none(None, caller_person_id="p-owner", is_staff=False) is None
    shown = person_or_none(OWNER, caller_person_id="p-x", is_staff=False)
    assert shown is not None and shown.name == "张*"


def test_vin_and_file_number_keep_only_their_tail_r_q_4() -> None:
    assert mask_vin("LSVAB12C0M1234567") == "***********234567"
    assert mask_file_no("500100123456") == "********3456"


@pytest.mark.parametrize(
    ("plate", "shown"),
    [
        ("渝A12345", "渝A***45"),  # ordinary, 7 characters
        ("渝AD12345", "渝A****45"),  # new-energy, 8 characters
        ("渝A***45", "渝A***45"),  # already masked: unchanged
        ("渝A12", "****"),  # too short to keep its ends
        ("", ""),
    ],
)
def test_plates_keep_province_office_and_last_two_r_q_4(plate: str, shown: str) -> None:
    """R-Q-4: someone else's plate (a decision paid for another person) shows 渝A***45."""
    assert mask_plate(plate) == shown


def test_the_character_masks_are_the_identifiers_ones() -> None:
    """One rule: cqcommon.masking re-exports the masks defined beside the formats."""
    assert mask_id_number is identifiers.mask_id_number
    assert mask_phone is identifiers.mask_phone
    assert mask_name is identifiers.mask_name


@given(st.text(max_size=20))
def test_masks_keep_length_and_are_idempotent_r_q_4(value: str) -> None:
    for fn in (mask_vin, mask_file_no, mask_plate):
        once = fn(value)
        assert len(once) == len(value)
        assert fn(once) == once


@given(st.text(min_size=5, max_size=10))
def test_a_masked_plate_hides_all_but_four_characters_r_q_4(plate: str) -> None:
    shown = mask_plate(plate)
    assert shown[:2] == plate[:2] and shown[-2:] == plate[-2:]
    assert set(shown[2:-2]) == {"*"}
