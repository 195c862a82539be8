"""Wires the query use cases to their adapters (the only module that knows both).

It also refuses to start a query service that would sign cursors with a development
or short key outside sandbox mode: such cursors could be forged by anyone who reads
this repository.
"""

from __future__ import annotations

from cqcommon.runner import ServiceContext
from cqcommon.settings import Settings

from cqquery.adapters.cache import ReadModelCache
from cqquery.adapters.eligibility import AdjudicationEligibility
from cqquery.adapters.limiter import RedisLookupLimiter
from cqquery.adapters.postgres_read_model import PostgresReaders
from cqquery.domain.cursor import CursorSigner
from cqquery.entrypoints.mappers import ProtoPageRenderer
from cqquery.service_layer.views import QueryViews


class InsecureCursorSecretError(RuntimeError):
    """The cursor key is the built-in development value (or too short) outside sandbox."""


def cursor_signer(settings: Settings) -> CursorSigner:
    """The signer of page cursors; outside sandbox mode only with a real secret."""
    weak = settings.insecure_secrets()
    if not settings.sandbox_mode and ("CURSOR_SECRET" in weak or "CURSOR_SECRET_PREVIOUS" in weak):
        raise InsecureCursorSecretError(
            "refusing to start the query service: CURSOR_SECRET is the development default "
            "or shorter than 32 bytes (or CURSOR_SECRET_PREVIOUS is set and shorter), and "
            "SANDBOX_MODE is off; set CURSOR_SECRET to a random secret of at least 32 bytes "
            "(page cursors are signed with it)"
        )
    return CursorSigner(settings.cursor_secret, previous=settings.cursor_secret_previous)


def build_views(ctx: ServiceContext) -> QueryViews:
    settings = ctx.settings
    return QueryViews(
        readers=PostgresReaders(ctx.db),
        cache=ReadModelCache(ctx.redis, ttl_s=settings.query_cache_ttl_s),
        renderer=ProtoPageRenderer(),
        eligibility=AdjudicationEligibility(
            ctx.channel(settings.adjudication_service_addr),
            timeout_s=settings.eligibility_timeout_s,
        ),
        lookup_limiter=RedisLookupLimiter(
            ctx.redis, prefix="q:rl:lookup", limit=settings.lookup_rate_per_minute, window_s=60
        ),
        clock=ctx.clock,
        cursors=cursor_signer(settings),
        points_limit=settings.points_limit,
        proof_grant_ttl_s=settings.proof_grant_ttl_s,
    )
