"""SMS consent codes in Redis (R-SMS-1, R-SMS-2): the adapter behind ``ports.SmsCodes``.

Every operation is one Lua script, so that concurrent requests for one phone see each
other's effects whole: of 100 concurrent ``issue`` calls for one phone exactly one passes
the cooldown, because the check and the write of the cooldown happen in the same script
(SET NX semantics, without a window between a GET and a SET).

Keys (``<p>`` is the prefix, ``fsms`` by default):

* ``<p>:cd:<ph>`` — the phone's resend cooldown: a hash {t: send time in ms, p: the purpose
  that sent it}; expires after the resend interval. ``release`` lifts it only for the
  purpose that set it.
* ``<p>:n:<ph>:<yyyymmdd>`` — sends to the phone that Asia/Shanghai day; expires at the next
  local midnight.
* ``<p>:lock:<ph>:<yyyymmdd>`` — the daily lock, set by the send that passes the limit;
  expires at the next local midnight.
* ``<p>:code:<pp>`` — the live code of one purpose (a follow request): a hash {d: HMAC of the
  code, w: wrong entries so far, x: expiry in ms}; expires with the code.

``<ph>`` and ``<pp>`` are HMAC-SHA256 digests (under ``sms_code_secret``) of the phone and the
purpose: a Redis dump lists no phone number, and without the secret nobody can tell which
phone a key belongs to. The code itself is stored only as HMAC(secret, purpose, code): a dump
does not give the code, and the stored digest is bound to its purpose.

Time: the scripts compare times the caller's clock gives (``now`` for ``issue``, the
injected clock for ``check`` and ``release``), and Redis TTLs of the same length bound what
is kept; with a real clock the two agree, and tests can move a fixed clock instead of
sleeping. The day keys carry the local date, so a new Asia/Shanghai day starts a new count
and has no lock whatever the TTLs say.

The comparison of an entered code is on digests: the script tests two HMACs for equality,
which tells an attacker nothing about how close a guess was (Lua has no constant-time
compare; comparing digests of secret-keyed inputs makes one unnecessary).

The scripts touch a phone's keys and a purpose's key together: one Redis, not cluster-slot
safe (as the query cache). Redis errors propagate: without Redis no code can be issued or
checked safely.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, time, timedelta

import redis.asyncio as aioredis
from cqcommon.clock import SHANGHAI, Clock
from cqcommon.metrics import SMS

from cqfollow.domain.sms import (
    CODE_DIGITS,
    CodeCheck,
    CodeCheckResult,
    SmsPhoneLockedError,
    SmsResendTooSoonError,
)

DEFAULT_PREFIX = "fsms"

# KEYS: lock, cooldown, day counter, code.
# ARGV: now ms, resend interval ms, daily limit, seconds to local midnight, code digest,
#       code TTL ms, code expiry ms, purpose key.
# Returns {status, wait ms}: 'ok', 'soon' (wait = ms until the cooldown ends), 'locked'.
_ISSUE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'locked', 0}
end
local last = redis.call('HGET', KEYS[2], 't')
if last then
  local wait = tonumber(last) + interval - now
  if wait > 0 then
    -- a clock behind the one that sent waits one interval at most
    return {'soon', math.min(wait, interval)}
  end
end
local sent = redis.call('INCR', KEYS[3])
if sent == 1 then
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if sent > tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[4])
  return {'locked', 0}
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 't', ARGV[1], 'p', ARGV[8])
redis.call('PEXPIRE', KEYS[2], interval)
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], 'd', ARGV[5], 'w', '0', 'x', ARGV[7])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
return {'ok', 0}
"""

# KEYS: code. ARGV: entered digest, now ms, wrong entries that void the code.
# Returns {status, attempts left}: 'ok', 'wrong', 'void', 'expired'.
_CHECK = """
local h = redis.call('HMGET', KEYS[1], 'd', 'w', 'x')
if not h[1] then
  return {'expired', 0}
end
if tonumber(h[3]) <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return {'expired', 0}
end
if h[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'ok', 0}
end
local wrong = redis.call('HINCRBY', KEYS[1], 'w', 1)
local left = tonumber(ARGV[3]) - wrong
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return {'void', 0}
end
return {'wrong', left}
"""

# KEYS: cooldown, code. ARGV: purpose key. The cooldown goes only if this purpose set it.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'p') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2])
return 1
"""

_OUTCOMES = {
    "ok": CodeCheck.OK,
    "wrong": CodeCheck.WRONG,
    "void": CodeCheck.VOID,
    "expired": CodeCheck.EXPIRED,
}


def new_code() -> str:
    """A uniform random 6-digit code from ``secrets`` (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def seconds_to_local_midnight(now: datetime) -> int:
    """Whole seconds (at least 1) from ``now`` to the next midnight in Asia/Shanghai."""
    local = now.astimezone(SHANGHAI)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=SHANGHAI)
    return max(1, math.ceil((midnight - local).total_seconds()))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisSmsCodes:
    """``ports.SmsCodes`` on Redis: one atomic script per operation (see module docstring)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        secret: str,
        code_ttl_s: float,
        resend_interval_s: float,
        max_wrong: int,
        daily_limit: int,
        clock: Clock,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if not secret:
            raise ValueError("the SMS code secret must not be empty")
        if code_ttl_s <= 0 or resend_interval_s <= 0 or max_wrong < 1 or daily_limit < 1:
            raise ValueError("code TTL and resend interval > 0; max_wrong and daily_limit >= 1")
        self._redis = redis
        self._key = secret.encode()
        self._code_ttl_ms = max(1, int(code_ttl_s * 1000))
        self._interval_ms = max(1, int(resend_interval_s * 1000))
        self._max_wrong = max_wrong
        self._daily_limit = daily_limit
        self._clock = clock
        self._prefix = prefix
        self._issue = redis.register_script(_ISSUE)
        self._check = redis.register_script(_CHECK)
        self._release = redis.register_script(_RELEASE)

    # -- derived names ------------------------------------------------------------------
    def _mac(self, *parts: str) -> str:
        # NUL separates the parts: no two different (purpose, code) pairs share a digest input.
        message = "\x00".join(parts).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _phone_key(self, phone: str) -> str:
        return self._mac("phone", phone)[:32]

    def _purpose_key(self, purpose_id: str) -> str:
        return self._mac("purpose", purpose_id)[:32]

    def _code_digest(self, purpose_id: str, code: str) -> str:
        return self._mac("code", purpose_id, code)

    def _code_key(self, purpose_id: str) -> str:
        return f"{self._prefix}:code:{self._purpose_key(purpose_id)}"

    def _cooldown_key(self, phone: str) -> str:
        return f"{self._prefix}:cd:{self._phone_key(phone)}"

    # -- the port -----------------------------------------------------------------------
    async def issue(self, *, phone: str, purpose_id: str, now: datetime) -> str:
        """A fresh code for ``purpose_id``; see ``ports.SmsCodes.issue``."""
        if now.tzinfo is None:
            raise ValueError("issue needs an aware datetime")
        code = new_code()
        ph = self._phone_key(phone)
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        to_midnight = seconds_to_local_midnight(now)
        now_ms = _ms(now)
        status, wait_ms = await self._issue(
            keys=[
                f"{self._prefix}:lock:{ph}:{day}",
                f"{self._prefix}:cd:{ph}",
                f"{self._prefix}:n:{ph}:{day}",
                self._code_key(purpose_id),
            ],
            args=[
                now_ms,
                self._interval_ms,
                self._daily_limit,
                to_midnight,
                self._code_digest(purpose_id, code),
                self._code_ttl_ms,
                now_ms + self._code_ttl_ms,
                self._purpose_key(purpose_id),
            ],
        )
        outcome = _text(status)
        if outcome == "soon":
            SMS.labels("follow", "follow_code", "resend_too_soon").inc()
            raise SmsResendTooSoonError(max(1, math.ceil(int(wait_ms) / 1000)))
        if outcome == "locked":
            SMS.labels("follow", "follow_code", "phone_locked").inc()
            raise SmsPhoneLockedError(to_midnight)
        return code

    async def release(self, *, phone: str, purpose_id: str) -> None:
        """Drop the code and lift the cooldown this purpose set (the daily count stays)."""
        await self._release(
            keys=[self._cooldown_key(phone), self._code_key(purpose_id)],
            args=[self._purpose_key(purpose_id)],
        )

    async def check(self, *, purpose_id: str, code: str) -> CodeCheckResult:
        """Compare ``code`` with the live one; OK uses it up, the last wrong entry voids it."""
        status, left = await self._check(
            keys=[self._code_key(purpose_id)],
            args=[
                self._code_digest(purpose_id, code),
                _ms(self._clock.now()),
                self._max_wrong,
            ],
        )
        return CodeCheckResult(_OUTCOMES[_text(status)], int(left))
