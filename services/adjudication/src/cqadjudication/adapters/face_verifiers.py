"""Which face verifiers this process uses (R-ADJ-8, R-SBX-1): ``sandbox`` in sandbox mode,
else ``alipay`` for online handlings; ``counter`` always, for counter handling.

A stored verification names the adapter that started it; ``face_verifiers_by_name`` is
how its result is asked of that same adapter later.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from cqcommon.alipay import AlipayClient
from cqcommon.settings import Settings

from cqadjudication.adapters.face_alipay import AlipayFaceVerifier
from cqadjudication.adapters.face_counter import CounterFaceVerifier
from cqadjudication.adapters.face_sandbox import SandboxFaceVerifier
from cqadjudication.ports import FaceVerifier


def alipay_timeout_s(settings: Settings) -> float:
    """Alipay's deadline: half the caller's gRPC deadline, leaving the rest of the request
    (relations, the database) its time."""
    return settings.grpc_deadline_s / 2


def face_verifier_for(settings: Settings, http_client: httpx.AsyncClient) -> FaceVerifier:
    """The verifier for online handlings: sandbox in sandbox mode, else Alipay.

    Outside sandbox mode the Alipay keys are loaded here, so a process with missing or
    broken keys fails at start, not at a person's first verification.
    """
    if settings.sandbox_mode:
        return SandboxFaceVerifier()
    client = AlipayClient(
        gateway_url=settings.alipay_gateway_url,
        app_id=settings.alipay_app_id,
        app_private_key_pem=settings.alipay_app_private_key_pem,
        alipay_public_key_pem=settings.alipay_public_key_pem,
        http=http_client,
        timeout_s=alipay_timeout_s(settings),
    )
    return AlipayFaceVerifier(client)


def face_verifiers_by_name(
    settings: Settings, http_client: httpx.AsyncClient
) -> Mapping[str, FaceVerifier]:
    """Every verifier this process can ask, by ``FaceVerifier.name``."""
    online = face_verifier_for(settings, http_client)
    counter = CounterFaceVerifier()
    return {online.name: online, counter.name: counter}
