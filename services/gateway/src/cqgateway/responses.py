"""Hot-path JSON responses.

A route that returns a pydantic model has FastAPI dump it and validate it again against
``response_model``; for a model the gateway has just built from a typed protobuf that
second pass is pure cost (a sixth of a cached list read). Routes on the hot path return
``json_of(model)`` instead and keep ``response_model`` for the OpenAPI schema.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_of(model: BaseModel) -> Response:
    """``model`` serialised once, as ``application/json``."""
    return Response(content=model.model_dump_json(), media_type="application/json")
