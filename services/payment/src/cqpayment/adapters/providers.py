"""Which ``TradeProvider`` a payment process uses, built once from its settings.

There is one: Alipay's trade API through ``AlipayTradeProvider``. Sandbox mode (R-SBX-1)
does not swap the adapter: ``make run`` points ``ALIPAY_GATEWAY_URL`` and the keys at the
fake Alipay it starts, so the sandbox runs the production code path and still cannot
reach a real provider. The test cluster does the same with its session's fake.
"""

from __future__ import annotations

import httpx
from cqcommon.alipay import AlipayClient
from cqcommon.settings import Settings

from cqpayment.adapters.alipay_trades import AlipayTradeProvider
from cqpayment.ports import TradeProvider


class ProviderConfigError(ValueError):
    """The Alipay settings cannot make a working client (a start-up error, not a request's)."""


def trade_provider_for(settings: Settings, http: httpx.AsyncClient) -> TradeProvider:
    """The Alipay trade provider: one ``AlipayClient`` on ``http`` (owned and closed by the
    caller), every call bounded by ``ALIPAY_TIMEOUT_S``."""
    missing = [
        name
        for name, value in (
            ("ALIPAY_APP_PRIVATE_KEY_PEM", settings.alipay_app_private_key_pem),
            ("ALIPAY_PUBLIC_KEY_PEM", settings.alipay_public_key_pem),
        )
        if not value.strip()
    ]
    if missing:
        raise ProviderConfigError(
            f"{' and '.join(missing)} must be set (in sandbox mode `make run` sets them "
            "to the fake Alipay's keys)"
        )
    try:
        client = AlipayClient(
            gateway_url=settings.alipay_gateway_url,
            app_id=settings.alipay_app_id,
            app_private_key_pem=settings.alipay_app_private_key_pem,
            alipay_public_key_pem=settings.alipay_public_key_pem,
            http=http,
            timeout_s=settings.alipay_timeout_s,
        )
    except ValueError as exc:  # a key that does not load: say which setting, not the key
        raise ProviderConfigError(f"the Alipay keys do not load: {exc}") from exc
    return AlipayTradeProvider(
        client, notify_url=settings.alipay_notify_url, seller_id=settings.alipay_seller_id
    )


__all__ = ["ProviderConfigError", "trade_provider_for"]
