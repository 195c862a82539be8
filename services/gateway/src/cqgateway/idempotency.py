"""The gateway's half of R-PAY-3 idempotency: the ``Idempotency-Key`` header and the request
fingerprint sent with it.

The payment service stores the key (scoped per caller and operation), the fingerprint and
the first response; it answers a replay, 422 ``IDEMPOTENCY_KEY_REUSED`` for another
fingerprint, 409 ``IDEMPOTENCY_KEY_IN_USE`` while the first request runs. Here:

* the header is checked before anything is sent (missing or empty: 400
  ``IDEMPOTENCY_KEY_REQUIRED``; not 1..255 visible ASCII characters, or sent twice: 400
  ``IDEMPOTENCY_KEY_INVALID``), so a key the service would refuse costs no round trip;
* the fingerprint is SHA-256 over a canonical JSON text of the operation and the request
  *as it will be executed* (the validated body with its identifiers normalised): sorted
  keys, no whitespace, UTF-8. Two bodies that differ only in key order, spacing or the
  spelling of the same decision number (full-width digits, blanks) are the same request
  and replay; a different decision or method is another request and is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence

from cqcommon.errors import IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REQUIRED, DomainError

HEADER = "Idempotency-Key"
#: The answer header of a replayed creation (Stripe's ``Idempotent-Replayed``).
REPLAYED_HEADER = "Idempotent-Replayed"
#: 1..255 visible ASCII characters (the payment service's rule, checked here first).
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key(values: Sequence[str]) -> str:
    """The one key of a request, given every ``Idempotency-Key`` header value it carried."""
    if not values or (len(values) == 1 and values[0] == ""):
        raise DomainError(IDEMPOTENCY_KEY_REQUIRED)
    if len(values) > 1:
        # Two keys: which one the client meant is a guess; refuse rather than pick one.
        raise DomainError(IDEMPOTENCY_KEY_INVALID, details={"reason": "repeated"})
    if _KEY_RE.fullmatch(values[0]) is None:
        raise DomainError(IDEMPOTENCY_KEY_INVALID, details={"reason": "format"})
    return values[0]


def canonical_request(operation: str, body: Mapping[str, object]) -> bytes:
    """The canonical text a fingerprint is taken of (sorted keys, no whitespace, UTF-8)."""
    text = json.dumps(
        {"operation": operation, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


def request_hash(operation: str, body: Mapping[str, object]) -> str:
    """Hex SHA-256 of :func:`canonical_request` (``CreatePaymentRequest.request_hash``)."""
    return hashlib.sha256(canonical_request(operation, body)).hexdigest()
