"""Who is asking, as the gateway authenticated them: a mini-program user (with the registry
person they are, if any, R-USR-1) or a member of counter staff (R-USR-2)."""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.errors import FORBIDDEN, SANDBOX_ONLY, DomainError


@dataclass(frozen=True)
class Caller:
    user_id: str = ""
    person_id: str = ""
    staff_id: str = ""
    staff_role: str = ""

    @property
    def is_staff(self) -> bool:
        return bool(self.staff_id)


def require_user(caller: Caller) -> str:
    """The Alipay user id of a mini-program caller; 403 for staff or an anonymous call
    (a follow belongs to the user who asked for it)."""
    if caller.is_staff or not caller.user_id:
        raise DomainError(FORBIDDEN, details={"required": "user"})
    return caller.user_id


def require_sandbox_staff(caller: Caller, *, sandbox_mode: bool) -> str:
    """The staff id of a sandbox-only call (R-SMS-3 outbox, roster seeding). Outside
    sandbox mode, and for anyone but staff, the operation does not exist (SANDBOX_ONLY,
    a 404): nothing tells a prober that a recording adapter could be there."""
    if not sandbox_mode or not caller.is_staff:
        raise DomainError(SANDBOX_ONLY)
    return caller.staff_id
