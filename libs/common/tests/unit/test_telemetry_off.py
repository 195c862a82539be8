"""With no span exporter (``OTEL_EXPORTER=none``, no OTLP endpoint) no SDK tracer provider
is installed: a configured provider switches on FastAPI's native telemetry and every
library's spans, made for nobody at about a sixth of the gateway's CPU per request.
Run in a fresh interpreter: a process installs its tracer provider once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from cqcommon.settings import Settings
    from cqcommon.telemetry import setup_telemetry, tracing_active
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    settings = Settings(
        database_url="postgresql://x@127.0.0.1/x", otel_exporter="{exporter}",
        otel_exporter_otlp_endpoint="",
    )
    provider = setup_telemetry("gateway", settings)
    span = trace.get_tracer("fastapi").start_span("GET /x")
    print(provider is None, tracing_active(), span.is_recording(),
          isinstance(trace.get_tracer_provider(), TracerProvider))
    """
)


def _run(exporter: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(exporter=exporter)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_no_exporter_installs_no_tracer_provider_and_spans_do_not_record() -> None:
    assert _run("none") == "True False False False"


def test_an_exporter_installs_the_sdk_provider_and_spans_record() -> None:
    assert _run("memory") == "False True True True"
