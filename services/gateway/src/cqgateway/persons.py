"""The registry person of a user whose token carries none (R-USR-1).

A token is issued at login with the person id the query service knew then. A user who logs
in before their registry record reached the read model (just imported, or the record came
later) holds a token without one, for the token's whole life. The query service resolves
such callers itself on every read, but the other services (adjudication: "is this your car,
your licence?") take the caller the gateway sends. So the gateway resolves the person for
such tokens, with the same ``ResolveUser`` the login uses, and remembers a found person in
this process for ``found_ttl_s`` (a user's person does not change). "None yet" is not
remembered: the next request asks again, so a record that arrives counts at once (a user
without any registry record, R-USR-1, pays one small lookup per request).

If the query service cannot answer, the caller goes on without a person (what the token
says), never with an error: every service already treats that as "owns nothing".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from cqcommon.errors import DomainError

log = logging.getLogger(__name__)

#: asks the query service for the person of an Alipay user ("" when none)
Resolve = Callable[[str], Awaitable[str]]


class PersonResolver:
    """``person_of(user_id)`` through a small in-process cache (see the module docstring)."""

    def __init__(
        self,
        resolve: Resolve,
        *,
        found_ttl_s: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._found_ttl_s = found_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._answers: dict[str, tuple[float, str]] = {}

    async def person_of(self, user_id: str) -> str:
        """The person id of ``user_id``, or "" when the registry has none (yet)."""
        cached = self._answers.get(user_id)
        now = self._clock()
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            person_id = await self._resolve(user_id)
        except DomainError as exc:
            # not an error for the caller: without a person they own nothing (R-USR-1)
            log.warning("person of a user not resolved: %s", exc.code)
            return ""
        if person_id:
            if len(self._answers) >= self._max_entries:  # only signed tokens get here
                self._answers.clear()
            self._answers[user_id] = (now + self._found_ttl_s, person_id)
        return person_id
