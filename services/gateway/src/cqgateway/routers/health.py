"""``GET /healthz`` (no I/O) and ``GET /readyz`` (every backing component answers; in sandbox
mode the sandbox roster is loaded too, check ``sandbox_roster``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cqgateway.deps import Context
from cqgateway.schemas import CheckOut, LivenessOut, ReadinessOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=LivenessOut, summary="The process is up")
async def healthz() -> LivenessOut:
    return LivenessOut()


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    summary="Every backing service answers (and, in sandbox mode, the sandbox roster is loaded)",
    responses={503: {"model": ReadinessOut, "description": "At least one component failed."}},
)
async def readyz(ctx: Context) -> JSONResponse:
    if ctx.readiness is None:
        body = ReadinessOut(
            status="not_ready",
            checks={"gateway": CheckOut(ok=False, detail="starting")},
            failed=["gateway"],
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    results = await ctx.readiness.check()
    checks = {name: CheckOut(ok=r.ok, detail=r.detail or None) for name, r in results.items()}
    failed = [name for name, r in results.items() if not r.ok]
    body = ReadinessOut(status="not_ready" if failed else "ready", checks=checks, failed=failed)
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if failed else 200)
