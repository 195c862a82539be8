"""The Alipay client's two HTTP exchanges (``cqcommon.alipay_http``) against a real HTTP
server on loopback: the same form reaches the server from both (the signature is over the
decoded values), no redirect is followed, and a refused connection, a deadline and a
non-200 answer become the same ``AlipayTransportError`` through ``AlipayClient``."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from cqcommon.alipay import AlipayClient, AlipayTransportError, generate_keypair_pem
from cqcommon.alipay_http import AiohttpAlipayHttp, AlipayHttp, HttpxAlipayHttp
from cqdev.stack import free_port

pytestmark = pytest.mark.integration

FORM = {"biz_content": '{"subject":"罚款 & 滞纳金","amount":"1+1=2"}', "sign": "a/b+c=="}


class Recorder(BaseHTTPRequestHandler):
    """/echo answers 200 with what it received; /moved 302s to /echo; /slow sleeps 2 s."""

    received: ClassVar[list[tuple[str, dict[str, list[str]], str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.received.append((self.path, urllib.parse.parse_qs(body), self.headers["Accept"]))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/echo")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(2)
        payload = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(params=["aiohttp", "httpx"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[AlipayHttp]:
    if request.param == "httpx":
        async with httpx.AsyncClient() as client:
            yield HttpxAlipayHttp(client)
        return
    aio = AiohttpAlipayHttp()
    try:
        yield aio
    finally:
        await aio.aclose()


def client_on(transport: AlipayHttp, url: str, timeout_s: float = 5.0) -> AlipayClient:
    private, _ = generate_keypair_pem()
    _, public = generate_keypair_pem()
    return AlipayClient(
        gateway_url=url,
        app_id="2021000000000000",
        app_private_key_pem=private,
        alipay_public_key_pem=public,
        http=transport,
        timeout_s=timeout_s,
    )


async def test_the_form_arrives_decoded_alike_with_the_accept_header(
    server: str, transport: AlipayHttp
) -> None:
    Recorder.received.clear()
    status, body = await transport.exchange(
        "POST", server + "/echo", form=FORM, headers={"Accept": "application/json"}, timeout_s=5
    )
    assert (status, body) == (200, b'{"ok":true}')
    ((path, form, accept),) = Recorder.received
    assert (path, accept) == ("/echo", "application/json")
    assert form == {k: [v] for k, v in FORM.items()}


async def test_a_redirect_is_not_followed(server: str, transport: AlipayHttp) -> None:
    Recorder.received.clear()
    status, _ = await transport.exchange(
        "POST", server + "/moved", form={}, headers={}, timeout_s=5
    )
    assert status == 302
    assert [path for path, _, _ in Recorder.received] == ["/moved"]
    with pytest.raises(AlipayTransportError, match="HTTP 302") as info:
        await client_on(transport, server + "/moved").call("alipay.trade.query", {})
    assert not info.value.timed_out


async def test_refused_and_late_answers_are_transport_errors(
    server: str, transport: AlipayHttp
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/gateway.do"
    with pytest.raises(AlipayTransportError) as refused:
        await client_on(transport, nobody).call("alipay.trade.query", {})
    assert not refused.value.timed_out
    with pytest.raises(AlipayTransportError, match="timed out") as late:
        await client_on(transport, server + "/slow", timeout_s=0.3).call("alipay.trade.query", {})
    assert late.value.timed_out
