"""``cqcommon.metrics`` without a database or broker: the gRPC interceptor's labels (method
as ``Service/Method``, status and catalogued error code, never a request value), the
shared ``/metrics`` endpoint, the sampler that survives a failing query, and the counting
wrappers (SMS, Alipay rejections)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from typing import Any

import grpc
import pytest
from cqcommon.errors import NOT_FOUND, DomainError
from cqcommon.grpc_server import GrpcServer
from cqcommon.metrics import (
    MetricsSampler,
    alipay_notification_rejected,
    at_most_every,
    exposed_names,
    serve_metrics,
    short_method,
)
from cqcommon.sms import SmsUnavailableError
from prometheus_client import REGISTRY


def sample(name: str, labels: Mapping[str, str]) -> float:
    return REGISTRY.get_sample_value(name, dict(labels)) or 0.0


def test_short_method_keeps_service_and_method_only() -> None:
    assert short_method("/cqtraffic.payment.v1.PaymentService/CreatePayment") == (
        "PaymentService/CreatePayment"
    )
    assert short_method("/grpc.health.v1.Health/Check") == "Health/Check"


def test_exposed_names_cover_counter_and_histogram_series() -> None:
    names = exposed_names()
    assert "cqtraffic_http_requests_total" in names
    assert "cqtraffic_grpc_server_handling_seconds_bucket" in names
    assert "cqtraffic_outbox_oldest_pending_age_seconds" in names


# -- the interceptor on a real grpc.aio server -------------------------------------------------
async def _ok(request: bytes, context: Any) -> bytes:
    return request


async def _missing(request: bytes, context: Any) -> bytes:
    raise DomainError(NOT_FOUND, details={"violation_id": request.decode()})


async def _crash(request: bytes, context: Any) -> bytes:
    raise RuntimeError("boom " + request.decode())


def _register(server: grpc.aio.Server) -> list[str]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in (("Ok", _ok), ("Missing", _missing), ("Crash", _crash))
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.v1.Probe", handlers),))
    return ["t.v1.Probe"]


async def test_rpcs_are_counted_by_method_status_and_error_code() -> None:
    server = GrpcServer(
        bind="127.0.0.1:0", register=_register, readiness={}, metrics_service="probe"
    )
    await server.start()
    labels = {"service": "probe", "method": "Probe/Missing"}
    before = {
        "ok": sample(
            "cqtraffic_grpc_server_handled_total",
            {"service": "probe", "method": "Probe/Ok", "grpc_code": "OK", "code": ""},
        ),
        "missing": sample(
            "cqtraffic_grpc_server_handled_total",
            {**labels, "grpc_code": "NOT_FOUND", "code": "NOT_FOUND"},
        ),
        "crash": sample(
            "cqtraffic_grpc_server_handled_total",
            {"service": "probe", "method": "Probe/Crash", "grpc_code": "INTERNAL", "code": ""},
        ),
        "timed": sample("cqtraffic_grpc_server_handling_seconds_count", labels),
    }
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            assert await channel.unary_unary("/t.v1.Probe/Ok", None, None)(b"x", timeout=5) == b"x"
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await channel.unary_unary("/t.v1.Probe/Missing", None, None)(
                    b"secret-id-123", timeout=5
                )
            assert missing.value.code() is grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as crash:
                await channel.unary_unary("/t.v1.Probe/Crash", None, None)(b"y", timeout=5)
            assert crash.value.code() is grpc.StatusCode.INTERNAL
    finally:
        await server.stop(0)
    assert (
        sample(
            "cqtraffic_grpc_server_handled_total",
            {"service": "probe", "method": "Probe/Ok", "grpc_code": "OK", "code": ""},
        )
        == before["ok"] + 1
    )
    assert (
        sample(
            "cqtraffic_grpc_server_handled_total",
            {**labels, "grpc_code": "NOT_FOUND", "code": "NOT_FOUND"},
        )
        == before["missing"] + 1
    )
    assert (
        sample(
            "cqtraffic_grpc_server_handled_total",
            {"service": "probe", "method": "Probe/Crash", "grpc_code": "INTERNAL", "code": ""},
        )
        == before["crash"] + 1
    )
    assert sample("cqtraffic_grpc_server_handling_seconds_count", labels) == before["timed"] + 1


# -- the endpoint ------------------------------------------------------------------------------
def test_one_endpoint_per_address_shared_by_the_runtimes_of_a_process() -> None:
    first = serve_metrics("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{first.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        assert "cqtraffic_http_requests_total" in body or "cqtraffic_http_requests" in body
        second = serve_metrics("127.0.0.1", first.port)
        second.close()
        with urllib.request.urlopen(url, timeout=5) as response:  # still served for `first`
            assert response.status == 200
    finally:
        first.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


# -- the sampler -------------------------------------------------------------------------------
async def test_a_failing_sampler_is_counted_and_the_others_still_run() -> None:
    ran: list[str] = []

    async def broken() -> None:
        raise OSError("database unreachable")

    async def working() -> None:
        ran.append("working")

    before = sample("cqtraffic_metrics_sample_errors_total", {"service": "t", "sampler": "broken"})
    sampler = MetricsSampler("t", {"broken": broken, "working": working}, interval_s=60)
    assert await sampler.sample_once() == {"broken": False, "working": True}
    assert ran == ["working"]
    after = sample("cqtraffic_metrics_sample_errors_total", {"service": "t", "sampler": "broken"})
    assert after == before + 1


async def test_a_sampler_that_hangs_times_out() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    sampler = MetricsSampler("t", {"hangs": hangs}, interval_s=60, timeout_s=0.05)
    assert await sampler.sample_once() == {"hangs": False}


async def test_a_throttled_sampler_runs_once_per_period() -> None:
    calls: list[int] = []

    async def count() -> None:
        calls.append(1)

    throttled = at_most_every(3600, count)
    await throttled()
    await throttled()
    assert len(calls) == 1


async def test_the_sampler_loop_stops_when_asked() -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def count() -> None:
        calls.append(1)
        stop.set()

    await asyncio.wait_for(MetricsSampler("t", {"c": count}, interval_s=60).run(stop), 5)
    assert calls == [1]


# -- counting wrappers -------------------------------------------------------------------------
class _Sender:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.outbox: list[str] = []

    async def send(self, *, phone: str, template_code: str, params: Mapping[str, str]) -> str:
        if self.fail:
            raise SmsUnavailableError("isv.BUSINESS_LIMIT_CONTROL")
        self.outbox.append(phone)
        return "m1"


async def test_sms_sent_and_refused_by_the_provider_are_counted() -> None:
    from cqcommon.metrics import CountingSmsSender

    sent = {"service": "t", "purpose": "p", "outcome": "sent"}
    refused = {"service": "t", "purpose": "p", "outcome": "provider_refused"}
    before = (
        sample("cqtraffic_sms_messages_total", sent),
        sample("cqtraffic_sms_messages_total", refused),
    )
    ok = CountingSmsSender(_Sender(False), service="t", purpose="p")
    assert await ok.send(phone="13900000005", template_code="T", params={"code": "1"}) == "m1"
    assert ok.outbox == ["13900000005"]  # the inner sender's own attributes pass through
    with pytest.raises(SmsUnavailableError):
        await CountingSmsSender(_Sender(True), service="t", purpose="p").send(
            phone="13900000005", template_code="T", params={}
        )
    assert sample("cqtraffic_sms_messages_total", sent) == before[0] + 1
    assert sample("cqtraffic_sms_messages_total", refused) == before[1] + 1


def test_alipay_rejections_never_label_a_posted_value() -> None:
    before = sample("cqtraffic_alipay_notifications_rejected_total", {"reason": "other"})
    alipay_notification_rejected("2088 forged value")
    alipay_notification_rejected("bad_signature")
    assert (
        sample("cqtraffic_alipay_notifications_rejected_total", {"reason": "other"}) == before + 1
    )
    assert sample("cqtraffic_alipay_notifications_rejected_total", {"reason": "bad_signature"}) >= 1


async def test_a_second_server_cannot_take_a_port_a_live_one_holds() -> None:
    """Without SO_REUSEPORT a port handed out twice (or a stale process still serving)
    fails the second server at start, instead of splitting the calls between the two."""
    first = GrpcServer(bind="127.0.0.1:0", register=_register, readiness={})
    await first.start()
    try:
        with pytest.raises(OSError, match="cannot bind"):
            GrpcServer(bind=f"127.0.0.1:{first.port}", register=_register, readiness={})
    finally:
        await first.stop(0)
