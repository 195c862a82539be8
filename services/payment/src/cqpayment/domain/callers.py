"""Who is asking (R-USR-1/2), as the gateway authenticated them: a mini-program user (with
the registry person they are, if any) or a member of counter staff with a role."""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.errors import FORBIDDEN, SUPERVISOR_REQUIRED, DomainError

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Caller:
    user_id: str = ""
    person_id: str = ""
    staff_id: str = ""
    staff_role: str = ""

    @property
    def is_staff(self) -> bool:
        return bool(self.staff_id)

    @property
    def is_supervisor(self) -> bool:
        return self.is_staff and self.staff_role == SUPERVISOR


def require_user(caller: Caller) -> str:
    """The Alipay user id of a mini-program caller; 403 for staff or an anonymous call
    (an online payment is bound to the buyer who pays it)."""
    if caller.is_staff or not caller.user_id:
        raise DomainError(FORBIDDEN, details={"required": "user"})
    return caller.user_id


def require_staff(caller: Caller) -> str:
    """The staff id, or 403 for anyone else (counter operations, R-USR-2)."""
    if not caller.is_staff:
        raise DomainError(FORBIDDEN, details={"required": "staff"})
    return caller.staff_id


def require_supervisor(caller: Caller) -> str:
    """R-PAY-5: only a supervisor approves a refund."""
    staff_id = require_staff(caller)
    if not caller.is_supervisor:
        raise DomainError(SUPERVISOR_REQUIRED)
    return staff_id
