"""``GET /metrics``: this process's Prometheus metrics (``cqcommon.metrics``), for the
scraper only: left out of the OpenAPI document, and kept off the public ingress by the
deployment. It needs no token because it carries no personal data: every label is a route
template, a method, a status or a catalogued code."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
