"""Building blocks with check digits for made-up data: VINs and ID numbers.

The ones the synthetic generator streams are computed inline there (precomputed digit
sums, for speed); these are the readable versions tests and fixtures use.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from cqcommon.identifiers import ID_CHECK_CHARS, ID_WEIGHTS, VIN_TRANSLITERATION, VIN_WEIGHTS

# Chongqing's districts and counties (GB/T 2260), used for ID numbers and decisions.
CHONGQING_DIVISIONS: Final[tuple[str, ...]] = tuple(
    f"5001{n:02d}" for n in (*range(1, 21), 51, 52, 53, 54, 55, 56)
) + tuple(f"5002{n:02d}" for n in (29, 30, 31, 33, 35, 36, 37, 38, 40, 41, 42, 43))


def make_vin(wmi: str, vds: str, year_code: str, plant: str, serial: str) -> str:
    """A VIN from its parts (3 + 5 + 1 + 1 + 6 chars) with the correct check digit at 9."""
    body = f"{wmi}{vds}0{year_code}{plant}{serial}"
    if len(body) != 17:
        raise ValueError("VIN parts must add up to 17 characters")
    rem = sum(VIN_TRANSLITERATION[c] * w for c, w in zip(body, VIN_WEIGHTS, strict=True)) % 11
    return f"{body[:8]}{'X' if rem == 10 else rem}{body[9:]}"


def make_id_number(region: str, birth: dt.date, sequence: int) -> str:
    """An 18-char ID number (region, birth date, 3-digit sequence, MOD 11-2 check char).

    The sequence's parity is the sex: odd male, even female.
    """
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    total = sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True))
    return body + ID_CHECK_CHARS[total % 11]
