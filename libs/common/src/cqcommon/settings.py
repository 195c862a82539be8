"""Process settings, read once from environment variables at start and passed down.

Every variable has a documented default that works on a developer machine; the settings
table of docs/operations.md is generated from the field descriptions here
(``python -m cqdev.settings_doc --write``, checked by tests/test_operations_doc.py).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Shortest signing secret accepted outside sandbox mode.
MIN_SECRET_BYTES = 32
#: The settings that sign something a client holds (tokens, cursors): never the default or
#: short outside sandbox mode, and in deployments they come from a secret store.
SIGNING_SECRETS: tuple[str, ...] = ("token_secret", "cursor_secret", "sms_code_secret")
#: Verify-only secrets set during a rotation (docs/operations.md, "Rotating secrets").
PREVIOUS_SECRETS: tuple[str, ...] = ("token_secret_previous", "cursor_secret_previous")


class Settings(BaseSettings):
    """One settings object per process (build it with ``Settings()``)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # -- infrastructure ---------------------------------------------------------------
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/cqtraffic",
        description="PostgreSQL URL; each service uses its own schema in this database.",
    )
    db_pool_min: int = Field(1, description="Minimum connections in each process's pool.")
    db_pool_max: int = Field(10, description="Maximum connections in each process's pool.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")
    redis_max_connections: int = Field(
        256,
        ge=1,
        description="Redis connections per process; a call beyond them waits (up to"
        " REDIS_POOL_TIMEOUT_S) instead of failing.",
    )
    redis_pool_timeout_s: float = Field(
        5.0, gt=0, description="How long a Redis call waits for a free pooled connection (s)."
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers (comma separated)."
    )
    kafka_topic_prefix: str = Field(
        "",
        description="Prefix put before every topic name (isolates test runs on a shared broker).",
    )
    kafka_session_timeout_ms: int = Field(10000, description="Consumer group session timeout (ms).")
    kafka_fetch_max_wait_ms: int = Field(
        20,
        ge=0,
        description="Longest a consumer's fetch waits at the broker for new records (ms) while"
        " records keep coming: the event lag on a busy topic.",
    )
    kafka_fetch_idle_wait_ms: int = Field(
        200,
        ge=0,
        description="The same, once a poll found nothing (a quiet topic): an idle consumer then"
        " asks the broker 1000/this times a second instead of 1000/KAFKA_FETCH_MAX_WAIT_MS, at the"
        " cost of up to this much lag for the first event after the quiet (ms). Apache Kafka"
        " answers a waiting fetch as soon as records arrive, so it costs no lag there; a broker"
        " that holds the fetch to its end (Tansu) does. Below KAFKA_FETCH_MAX_WAIT_MS counts as"
        " equal to it.",
    )
    outbox_listen: bool = Field(
        True,
        description="Writers NOTIFY after each commit that wrote events and relays LISTEN, so"
        " an event leaves at once; polling (OUTBOX_POLL_INTERVAL_S) stays as the fallback."
        " false: neither, polling only.",
    )
    outbox_poll_interval_s: float = Field(
        1.0,
        gt=0,
        description="How often an idle relay looks for events it was not notified of (s).",
    )
    outbox_retention_h: int = Field(
        168,
        ge=1,
        description="Published outbox rows are kept this long, then deleted by the relay: the"
        " window `outbox republish --since` can send again after a broker loss (h).",
    )
    inbox_retention_h: int = Field(
        336,
        ge=1,
        description="Inbox rows are kept this long, then deleted by their consumer; at least"
        " OUTBOX_RETENTION_H and the topics' retention, so every redelivery is still"
        " recognised (h).",
    )
    event_log_prune_interval_s: float = Field(
        300.0,
        ge=0,
        description="How often relays and consumers delete outbox and inbox rows past their"
        " retention (s); 0 turns it off.",
    )
    # -- service addresses (<PEER>_SERVICE_ADDR) ---------------------------------------
    query_service_addr: str = Field("127.0.0.1:50051", description="Query service gRPC address.")
    adjudication_service_addr: str = Field(
        "127.0.0.1:50052", description="Adjudication service gRPC address."
    )
    payment_service_addr: str = Field(
        "127.0.0.1:50053", description="Payment service gRPC address."
    )
    follow_service_addr: str = Field(
        "127.0.0.1:50054", description="Vehicle-follow service gRPC address."
    )
    registry_service_addr: str = Field(
        "127.0.0.1:50055", description="Registry import service gRPC address."
    )
    jobs_service_addr: str = Field(
        "127.0.0.1:50056", description="Nightly job runner's gRPC address (its run records)."
    )
    grpc_port: int | None = Field(
        None, description="Port this service listens on (default: the port of its *_SERVICE_ADDR)."
    )
    grpc_bind_host: str = Field("127.0.0.1", description="Address the gRPC servers bind to.")
    grpc_deadline_s: float = Field(5.0, description="Deadline for every outgoing gRPC call (s).")
    # -- gateway ----------------------------------------------------------------------
    gateway_host: str = Field("127.0.0.1", description="Gateway bind address.")
    gateway_port: int = Field(8000, description="Gateway HTTP port.")
    token_secret: str = Field(
        "dev-only-change-me-0123456789abcdef",
        description="HMAC secret that signs user and staff tokens (set in production).",
    )
    cursor_secret: str = Field(
        "dev-only-cursor-key-0123456789abcdef",
        description="HMAC key that signs page cursors (query service; set in production).",
    )
    sms_code_secret: str = Field(
        "dev-only-sms-code-key-0123456789abcdef",
        description="HMAC key under which SMS codes are stored (never in clear; set in"
        " production).",
    )
    token_secret_previous: str = Field(
        "",
        description="During a rotation only: the TOKEN_SECRET being replaced. Tokens it signed"
        " are still accepted until they expire; new ones are signed with TOKEN_SECRET. Clear it"
        " once STAFF_TOKEN_TTL_S has passed.",
    )
    cursor_secret_previous: str = Field(
        "",
        description="During a rotation only: the CURSOR_SECRET being replaced, still accepted"
        " for page cursors it signed.",
    )
    token_ttl_s: int = Field(7200, description="Lifetime of a user token (s).")
    staff_token_ttl_s: int = Field(28800, description="Lifetime of a staff token (s).")
    staff_account_check_ttl_s: float = Field(
        5.0,
        description="How long the gateway trusts that a staff account is active (s): "
        "disabling an account takes effect within this time.",
    )
    max_body_bytes: int = Field(65536, description="Largest request body the gateway accepts.")
    sandbox_mode: bool = Field(
        True, description="Sandbox mode (R-SBX-1): sandbox face/payment adapters, recording SMS."
    )
    sandbox_staff_password: str = Field(
        "sandbox", description="Password of the sandbox staff accounts clerk01 / super01."
    )
    # -- Alipay open platform ---------------------------------------------------------
    alipay_gateway_url: str = Field(
        "https://openapi.alipay.com/gateway.do", description="Alipay open-platform gateway URL."
    )
    alipay_app_id: str = Field("2021000000000000", description="Alipay app id.")
    alipay_app_private_key_pem: str = Field(
        "", description="App RSA private key (PEM) that signs requests (RSA2)."
    )
    alipay_public_key_pem: str = Field(
        "", description="Alipay's RSA public key (PEM) that verifies responses/notifications."
    )
    alipay_timeout_s: float = Field(
        5.0, gt=0, description="Deadline of every call to the Alipay open platform (s)."
    )
    alipay_seller_id: str = Field(
        "2088000000009999",
        description="Our merchant's Alipay partner id (seller_id): a notification for another"
        " seller is rejected (R-PAY-7).",
    )
    alipay_notify_url: str = Field(
        "http://127.0.0.1:8000/api/v1/alipay/notify",
        description="Where Alipay posts trade notifications: the gateway's public"
        " /api/v1/alipay/notify (configured, never built from a request's Host header).",
    )
    # -- nightly job runner (R-JOB-*) ---------------------------------------------------
    jobs_batch_size: int = Field(
        500, ge=1, le=1000, description="Items per RunJob batch the job runner asks a service for."
    )
    jobs_stop_margin_s: float = Field(
        60.0,
        ge=0,
        description="The job runner takes no new batch this close to 00:30 (the window's end).",
    )
    jobs_scheduler: bool = Field(
        True,
        description="`cqjobs run` runs every job each night at 22:00 Asia/Shanghai; false:"
        " it only serves (benchmarks of daytime load, or where a CronJob runs the jobs).",
    )
    # -- payment ------------------------------------------------------------------------
    payment_maintenance_window: str = Field(
        "22:00-00:30",
        description="R-PAY-6: daily window (Asia/Shanghai, HH:MM-HH:MM) in which new payments"
        " are refused with 503; empty turns the refusal off (test sessions whose subject is not"
        " the window, so they do not depend on the time of day they run at).",
    )
    idempotency_key_retention_h: int = Field(
        48, ge=48, description="R-PAY-3: hours an Idempotency-Key is kept before the reaper job."
    )
    idempotency_lock_timeout_s: float = Field(
        30.0,
        gt=0,
        description="R-PAY-3: a request holding a key longer than this (a crashed process) may"
        " be taken over by a retry with the same key; before that a retry answers 409.",
    )
    payment_pending_resolve_after_s: int = Field(
        300,
        ge=0,
        description="R-PAY-4 / R-JOB-1: the pending-payment job asks the provider about"
        " payments pending longer than this (s).",
    )
    payment_feedback_max: int = Field(
        5, ge=1, description="R-PAY-9: feedback entries a user may file per payment."
    )
    # -- telemetry and logs -------------------------------------------------------------
    otel_exporter: Literal["console", "otlp", "memory", "none"] = Field(
        "none",
        description="Span exporter: console, otlp, memory (tests) or none. With none no"
        " spans are made at all (HTTP, gRPC, relays, consumers), which saves their CPU.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP endpoint; when set and OTEL_EXPORTER is none, OTLP is used."
    )
    log_level: str = Field("INFO", description="Log level of the JSON logs.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of this process's Prometheus /metrics endpoint (gRPC services and"
        " the jobs runner; the gateway serves /metrics on its own port). Unset: none.",
    )
    metrics_sample_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often the gauges read from the database and the broker (outbox"
        " backlog, consumer lag, payments by state, refunds awaiting approval) are refreshed (s).",
    )
    # -- business configuration (DOMAIN.md rules marked *(config)*) ---------------------
    timezone: str = Field("Asia/Shanghai", description="Time zone of every calendar rule.")
    points_limit: int = Field(12, description="R-ADJ-1: points after handling may not exceed.")
    points_sync_guard_hours: int = Field(
        24, description="R-ADJ-6: hours after an outside points change that block online handling."
    )
    face_verification_ttl_s: int = Field(
        600, description="R-ADJ-8: a passed face check's life (s)."
    )
    online_fine_limit_fen: int = Field(
        20_000, description="R-ADJ-1..4: the largest fine handled online (fen; 200 yuan)."
    )
    points_buying_max_vehicles: int = Field(
        3, description="R-X-2: other people's vehicles one licence may take points for per cycle."
    )
    points_buying_max_licences: int = Field(
        3, description="R-X-2: different licences one vehicle's points may go to per cycle."
    )
    decision_authority_code: str = Field(
        "500000",
        description="R-ADJ-7: division code (6 digits) that prefixes decision numbers issued here.",
    )
    licence_follow_limit: int = Field(5, description="R-FOL-8: followed licences at once.")
    follow_max_active: int = Field(
        2, ge=1, description="R-FOL-3: other people's vehicles one user follows at once."
    )
    follow_chances_per_year: int = Field(
        3, ge=1, description="R-FOL-3: follows that may become active per calendar year."
    )
    vehicle_max_followers: int = Field(
        3, ge=1, description="R-FOL-4: users following one vehicle at once."
    )
    follow_request_ttl_h: int = Field(
        72,
        ge=1,
        description="R-FOL-2: a follow request nobody approves, declines or confirms expires"
        " after this many hours (it spends no chance).",
    )
    sms_follow_ttl_days: int = Field(
        365, ge=1, description="R-FOL-5: an SMS-authorised follow ends after this many days."
    )
    sms_code_ttl_s: int = Field(300, ge=30, description="R-SMS-1: an SMS code's life (s).")
    sms_resend_interval_s: int = Field(
        60, ge=1, description="R-SMS-1: seconds between two SMS to one phone."
    )
    sms_max_wrong_entries: int = Field(
        5, ge=1, description="R-SMS-1: wrong entries that void a code."
    )
    sms_daily_limit: int = Field(
        10,
        ge=1,
        description="R-SMS-2: SMS to one phone per day; one more locks the phone for the rest"
        " of the day (Asia/Shanghai).",
    )
    sms_provider: Literal["recording", "aliyun"] = Field(
        "recording",
        description="R-SMS-3: 'recording' keeps what would be sent (tests, sandbox; staff read"
        " it in sandbox mode), 'aliyun' sends through Alibaba Cloud SMS (SendSms).",
    )
    sms_timeout_s: float = Field(5.0, gt=0, description="Deadline of every SMS gateway call (s).")
    aliyun_sms_endpoint: str = Field(
        "dysmsapi.aliyuncs.com", description="Alibaba Cloud SMS endpoint (host, or a URL)."
    )
    aliyun_access_key_id: str = Field("", description="Alibaba Cloud AccessKey id for SMS.")
    aliyun_access_key_secret: str = Field(
        "", description="Alibaba Cloud AccessKey secret for SMS (a secret)."
    )
    aliyun_sms_sign_name: str = Field(
        "重庆交警", description="The approved SMS signature (SignName)."
    )
    aliyun_sms_template_code: str = Field(
        "SMS_000000000",
        description="The approved template of the follow-consent code (TemplateCode); its one"
        " parameter is ${code}.",
    )
    aliyun_sms_overdue_template_code: str = Field(
        "SMS_000000001",
        description="R-JOB-6: the approved template of the overdue-decision notice"
        " (TemplateCode); its parameters are ${decision} (the decision number's last 4"
        " digits) and ${amount} (yuan due that day, late fee included).",
    )
    lookup_rate_per_minute: int = Field(10, description="R-Q-1: proof lookups per user per minute.")
    proof_grant_ttl_s: int = Field(
        1800, description="R-Q-1: how long a successful proof lookup grants access (s)."
    )
    query_cache_ttl_s: int = Field(
        300, description="Lifetime of a cached read in Redis (s); 0 turns the query cache off."
    )
    record_clock_skew_s: int = Field(
        300,
        description="Recorded violations: how far in the future occurred_at may lie (clock skew, s).",
    )
    violation_floor_date: date = Field(
        date(2000, 1, 1),
        description="Recorded violations: the earliest occurred_at accepted (YYYY-MM-DD).",
    )
    eligibility_timeout_s: float = Field(
        1.0, description="R-Q-3: deadline of the online-handling question to adjudication (s)."
    )

    @model_validator(mode="after")
    def _inbox_outlives_outbox(self) -> Settings:
        # a republished event whose inbox row is gone would be applied a second time
        if self.inbox_retention_h < self.outbox_retention_h:
            raise ValueError(
                f"INBOX_RETENTION_H ({self.inbox_retention_h}) must be at least"
                f" OUTBOX_RETENTION_H ({self.outbox_retention_h}): a redelivered event must"
                " still find its inbox row"
            )
        return self

    def insecure_secrets(self) -> list[str]:
        """Names of secrets that are the built-in development value or shorter than 32 bytes.

        Outside sandbox mode a process that signs anything refuses to start with one of them.
        """
        weak: list[str] = []
        for name in SIGNING_SECRETS:
            value = getattr(self, name)
            field = type(self).model_fields[name]
            if value == field.default or len(value.encode()) < MIN_SECRET_BYTES:
                weak.append(name.upper())
        for name in PREVIOUS_SECRETS:
            # a previous secret is optional, but one that is set must have been a real one
            value = getattr(self, name)
            if value and len(value.encode()) < MIN_SECRET_BYTES:
                weak.append(name.upper())
        return weak

    def service_port(self, addr: str) -> int:
        """The port this process listens on for a service whose address is ``addr``."""
        if self.grpc_port is not None:
            return self.grpc_port
        return int(addr.rsplit(":", 1)[1])
