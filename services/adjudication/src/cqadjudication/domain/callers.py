"""Who is asking (R-USR-1/2), as the gateway authenticated them: a user (with the person
the registry knows them as, if any) or a member of counter staff."""

from __future__ import annotations

from dataclasses import dataclass

from cqcommon.errors import FORBIDDEN, DomainError


@dataclass(frozen=True)
class Caller:
    user_id: str = ""
    person_id: str = ""
    staff_id: str = ""
    staff_role: str = ""

    @property
    def is_staff(self) -> bool:
        return bool(self.staff_id)


def require_staff(caller: Caller) -> str:
    """The staff id, or 403 for anyone else (counter operations, R-USR-2)."""
    if not caller.is_staff:
        raise DomainError(FORBIDDEN, details={"required": "staff"})
    return caller.staff_id
