"""Use cases: record that a sandbox roster load completed, and say whether one did (R-SBX-1).

The loader (``python -m cqregistry load-sandbox``) marks a load only after every step
succeeded, so "loaded" means the roster's people, vehicles, licences, violations, its paid
violation and its follows are in place in every service that was asked. The gateway's
``/readyz`` asks for the status in sandbox mode, so a sandbox is never called ready before
its logins and cars exist. Outside sandbox mode there is no roster: marking is refused.
"""

from __future__ import annotations

from datetime import datetime

from cqcommon.errors import SANDBOX_ONLY, DomainError

from cqregistry.ports import SandboxRosterLog


async def mark_roster_loaded(
    *, log: SandboxRosterLog, sandbox_mode: bool, records: int, violations: int, follows: int
) -> datetime:
    """Record a completed load; returns when. Refused (SANDBOX_ONLY) outside sandbox mode."""
    if not sandbox_mode:
        raise DomainError(SANDBOX_ONLY, details={"method": "MarkSandboxRosterLoaded"})
    return await log.add(records=records, violations=violations, follows=follows)


async def roster_loaded_at(*, log: SandboxRosterLog) -> datetime | None:
    """When the last completed load was recorded; None when none was."""
    return await log.last_loaded_at()
