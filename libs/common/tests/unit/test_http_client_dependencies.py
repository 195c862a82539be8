"""What httpx needs to be cheap per request: sniffio importable (a pinned dependency of
cqcommon), or httpcore's event-loop check runs a failed import several times per request
(measured ~0.4 ms each, a quarter of an httpx client's CPU)."""

from __future__ import annotations

import importlib.util


def test_httpcore_finds_sniffio_so_its_event_loop_check_is_not_a_failed_import() -> None:
    assert importlib.util.find_spec("sniffio") is not None
