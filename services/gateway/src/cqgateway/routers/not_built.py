"""The endpoints of API.md that are not built yet: each answers 501 ``NOT_IMPLEMENTED`` in
the error envelope (after authentication, where the contract requires a token), so the
mini-program and counter teams see the whole contract in /openapi.json and get a stable
answer instead of a 404.

``PLANNED`` is the list, with the issue that fills each endpoint in. When an issue lands,
its rows move out of this table into a real router (and out of the tests' expectations).

The table is empty today: every endpoint of API.md is built. The last two, the decision
notice PDF and the nightly reconciliation, came with the nightly jobs
(``cqgateway.routers.nightly``). The machinery stays so that the next contract change can
publish an endpoint before it is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NoReturn

from cqcommon.errors import NOT_IMPLEMENTED, DomainError
from fastapi import APIRouter, Depends, Path
from fastapi.params import Depends as DependsParam

from cqgateway.deps import current_staff, current_user, require_role
from cqgateway.openapi import error_codes

router = APIRouter()

Auth = Literal["user", "staff", "supervisor", "none"]

#: Path parameters of the planned endpoints: ids are opaque tokens, dates ISO calendar days.
_ID = r"^[A-Za-z0-9_-]+$"
_PATTERNS: dict[str, str] = {"date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}


@dataclass(frozen=True)
class Planned:
    """One endpoint of API.md that a later issue builds."""

    method: str
    path: str
    auth: Auth
    issue: str
    summary: str


PLANNED: tuple[Planned, ...] = ()

_AUTH: dict[Auth, list[DependsParam]] = {
    "user": [Depends(current_user)],
    "staff": [Depends(current_staff)],
    "supervisor": [Depends(require_role("supervisor"))],
    "none": [],
}


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _endpoint(planned: Planned) -> Callable[..., Coroutine[Any, Any, NoReturn]]:
    """A handler answering 501, with the path's parameters in its signature (so FastAPI
    validates and documents them like a real route's)."""

    async def not_built(**_params: str) -> NoReturn:
        raise DomainError(NOT_IMPLEMENTED, details={"planned_in": planned.issue})

    not_built.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    str, Path(min_length=1, max_length=64, pattern=_PATTERNS.get(name, _ID))
                ],
            )
            for name in _path_parameters(planned.path)
        ]
    )
    return not_built


for _planned in PLANNED:
    router.add_api_route(
        _planned.path,
        _endpoint(_planned),
        methods=[_planned.method],
        dependencies=_AUTH[_planned.auth],
        tags=["not built yet"],
        summary=_planned.summary,
        description=(
            f"Part of the API.md contract; not built yet: answers 501 `NOT_IMPLEMENTED` until "
            f"the {_planned.issue} issue lands"
            + ("" if _planned.auth == "none" else " (after authentication)")
            + "."
        ),
        openapi_extra=error_codes(NOT_IMPLEMENTED),
        response_model=None,
    )
