"""Wires the follow use cases to their adapters (the only module that knows both): the
PostgreSQL unit of work, the SMS codes in Redis, the SMS sender the settings name and, in
sandbox mode, the recording outbox staff read.

It also refuses to start a follow service that would keep SMS codes under the development
or a short key outside sandbox mode: codes are stored as HMAC(SMS_CODE_SECRET, ...) and a
key anyone can read in this repository would let anyone who reads Redis test codes offline.
"""

from __future__ import annotations

from cqcommon.metrics import CountingSmsSender
from cqcommon.runner import ServiceContext
from cqcommon.settings import Settings
from cqcommon.sms.senders import sandbox_outbox_for, sms_sender_for

from cqfollow.adapters.sms_senders import sms_codes_for
from cqfollow.adapters.unit_of_work import PostgresUnitOfWork
from cqfollow.entrypoints.mappers import envelope_of
from cqfollow.ports import SmsCodes, SmsOutbox, SmsSender
from cqfollow.service_layer.config import Deps, FollowConfig


class InsecureSmsCodeSecretError(RuntimeError):
    """The SMS code key is the built-in development value (or too short) outside sandbox."""


def check_sms_code_secret(settings: Settings) -> None:
    """Outside sandbox mode only a real SMS_CODE_SECRET (32+ bytes, not the default)."""
    if not settings.sandbox_mode and "SMS_CODE_SECRET" in settings.insecure_secrets():
        raise InsecureSmsCodeSecretError(
            "refusing to start the follow service: SMS_CODE_SECRET is the development default "
            "or shorter than 32 bytes, and SANDBOX_MODE is off; set SMS_CODE_SECRET to a "
            "random secret of at least 32 bytes (SMS codes are stored as HMACs under it)"
        )


def build_deps(
    ctx: ServiceContext,
    *,
    sms_codes: SmsCodes | None = None,
    sms_sender: SmsSender | None = None,
    sms_outbox: SmsOutbox | None = None,
) -> Deps:
    """The use cases' dependencies; tests may inject any SMS port."""
    settings = ctx.settings
    check_sms_code_secret(settings)

    def unit_of_work() -> PostgresUnitOfWork:
        return PostgresUnitOfWork(ctx.db, envelope_of)

    return Deps(
        uows=unit_of_work,
        sms_codes=sms_codes or sms_codes_for(settings, ctx.redis, ctx.clock),
        sms_sender=CountingSmsSender(
            sms_sender or sms_sender_for(settings, ctx.redis, ctx.clock),
            service="follow",
            purpose="follow_code",
        ),
        sms_outbox=sms_outbox or sandbox_outbox_for(settings, ctx.redis),
        clock=ctx.clock,
        config=FollowConfig.from_settings(settings),
    )
