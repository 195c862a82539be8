"""Every service's running roles prune the event log they own (cqcommon.retention): the
relay its schema's outbox, the consumers their groups' inbox rows; a service that
publishes nothing and consumes nothing runs no pruner."""

from __future__ import annotations

import pytest
from cqdev.testing import Cluster

pytestmark = pytest.mark.integration


async def test_each_service_prunes_the_event_log_it_owns(cluster: Cluster) -> None:
    owners = 0
    for name, runtime in cluster.runtimes.items():
        groups = [c.group_id for c in runtime.spec.consumers]
        if not runtime.spec.publishes_events and not groups:
            assert runtime.pruner is None, name
            continue
        owners += 1
        assert runtime.pruner is not None, name
        assert runtime.pruner.outbox == runtime.spec.publishes_events, name
        assert runtime.pruner.groups == groups, name
        assert runtime.pruner.db.schema == runtime.spec.schema, name
    assert owners >= 4  # registry, adjudication, payment, query and follow own event logs
