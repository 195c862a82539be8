"""Fixtures of payment's integration tests: the payment gRPC server alone on the session's
test database, talking to the session's fake Alipay server (``fake_alipay``) through the
real Alipay adapter (``trade_provider_for``: the production and sandbox code path), and a
connection pool on payment's schema for writing the decision copy as the consumers do and
reading tables back.

The maintenance window is off in the shared server (``PAYMENT_MAINTENANCE_WINDOW`` empty):
these tests must not depend on the hour they run at. ``payment_at`` starts a server with the
window on and a fixed clock, for the window's own test; ``payment_with`` one with other
settings (another SMS gateway, for the overdue job's failed send).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
from cqcommon.clock import Clock
from cqcommon.db import Database
from cqcommon.grpc_client import make_channel
from cqcommon.runner import ServiceRuntime
from cqcommon.settings import Settings
from cqdev.stack import free_port
from cqpayment.wiring import SPEC
from cqtraffic.payment.v1 import payment_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from cqtraffic.payment.v1.payment_pb2_grpc import PaymentServiceAsyncStub


@contextlib.asynccontextmanager
async def _stub(
    settings: Settings, *, clock: Clock | None = None
) -> AsyncIterator[PaymentServiceAsyncStub]:
    runtime = ServiceRuntime(SPEC, settings, roles=("serve",), port=free_port(), clock=clock)
    await runtime.start()
    channel = make_channel(f"127.0.0.1:{runtime.port}")
    try:
        stub: PaymentServiceAsyncStub = pb_grpc.PaymentServiceStub(channel)
        yield stub
    finally:
        await channel.close(None)
        await runtime.stop(grace_s=1)


@pytest.fixture(scope="module")
async def payment(
    test_settings: Settings, migrated_database: Any
) -> AsyncIterator[PaymentServiceAsyncStub]:
    """The payment gRPC server alone (no relay: outbox rows stay to be read), on the real
    Alipay adapter against the session's fake Alipay, maintenance window off."""
    settings = test_settings.model_copy(update={"payment_maintenance_window": ""})
    async with _stub(settings) as stub:
        yield stub


@pytest.fixture
def payment_at(
    test_settings: Settings, migrated_database: Any
) -> Callable[[Clock], contextlib.AbstractAsyncContextManager[PaymentServiceAsyncStub]]:
    """``async with payment_at(clock) as stub``: a server with the R-PAY-6 window on and
    ``clock`` as its time."""
    settings = test_settings.model_copy(update={"payment_maintenance_window": "22:00-00:30"})
    return lambda clock: _stub(settings, clock=clock)


@pytest.fixture
def payment_with(
    test_settings: Settings, migrated_database: Any
) -> Callable[..., contextlib.AbstractAsyncContextManager[PaymentServiceAsyncStub]]:
    """``async with payment_with(sms_provider=..., ...) as stub``: a server whose settings
    differ by these (maintenance window off)."""

    def start(**changes: Any) -> contextlib.AbstractAsyncContextManager[PaymentServiceAsyncStub]:
        update = {"payment_maintenance_window": "", **changes}
        return _stub(test_settings.model_copy(update=update))

    return start


@pytest.fixture(scope="module")
async def payment_db(test_settings: Settings, migrated_database: Any) -> AsyncIterator[Database]:
    """A small pool on payment's schema (decision copy writes, table reads)."""
    db = Database(test_settings.database_url, "payment", max_size=2)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
