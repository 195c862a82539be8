"""The adjudication service's sampled gauge (``cqcommon.metrics``): R-X-2 points-buying
alerts raised in the last 24 hours, by kind (on ``points_buying_alerts_raised_idx``)."""

from __future__ import annotations

from collections.abc import Mapping

from cqcommon.db import Database
from cqcommon.metrics import POINTS_BUYING_ALERTS, SampleFn

#: every kind of ``points_buying_alerts_kind_known``: a kind with no alert is reported as 0
ALERT_KINDS = ("licence_for_many_vehicles", "vehicle_to_many_licences")


def adjudication_samplers(db: Database) -> Mapping[str, SampleFn]:
    async def points_buying_alerts() -> None:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT kind, count(*) FROM points_buying_alerts"
                " WHERE raised_at > now() - interval '24 hours' GROUP BY kind"
            )
            counts = {str(kind): int(n) for kind, n in await cur.fetchall()}
        for kind in ALERT_KINDS:
            POINTS_BUYING_ALERTS.labels(kind).set(counts.get(kind, 0))

    return {"points_buying_alerts": points_buying_alerts}
