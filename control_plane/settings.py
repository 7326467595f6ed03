"""The one place configuration is read: environment variables, validated by pydantic-settings.

Every variable is listed in the README's configuration table; names without a prefix (TTS_PORT,
XTTS_MODEL_PATH, MAX_CONCURRENT_STREAMS, LOG_LEVEL, ...) keep the meaning they have always had.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # --- HTTP server ---
    tts_host: str = Field("0.0.0.0", description="Address the API binds to.")
    tts_port: int = Field(8790, description="Port of the API.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR; logs are JSON lines.")
    tts_workers: int = Field(1, description="Uvicorn worker processes.")
    tts_stage_timing: bool = Field(
        False, description="Log each HTTP request's stage timestamps up to its first audio byte (logger "
        "`tts_gateway.stages`, INFO; no text or audio): what `python -m bench ttfa` reads. Off costs nothing.",
    )
    shutdown_grace_s: float = Field(
        25.0, ge=0, description="On SIGTERM, seconds streams in flight may take to finish while new ones get 503 "
        "(keep below the pod's terminationGracePeriodSeconds).",
    )

    http_keepalive_timeout_s: float = Field(
        75.0, gt=0, description="Seconds an idle keep-alive HTTP connection stays open. Longer than the idle "
        "timeouts of load balancers and client pools (60 s, 5 s), so the server never closes a connection a "
        "client is about to reuse (the client would see a reset request).",
    )

    # --- WebSockets (WS /v1/synthesize/ws) ---
    ws_ping_interval_s: float = Field(
        20.0, gt=0, description="Seconds between the server's WebSocket pings (keepalive through proxies).")
    ws_ping_timeout_s: float = Field(
        20.0, gt=0, description="Seconds a WebSocket client may take to answer a ping before it is closed (1011).")
    ws_inactivity_timeout_s: float = Field(
        60.0, ge=1, description="A WebSocket with no client message and no audio in flight for this long is "
        "closed (a client may set its own with `inactivity_timeout` in its start message).")
    ws_max_contexts: int = Field(10, ge=1, description="Contexts one WebSocket may have open at once.")
    ws_max_message_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest WebSocket message accepted from a client, in bytes.")

    # --- State: embedded defaults (SQLite, in-process limits and cache) unless URLs are given ---
    tts_data_dir: Path = Field(REPO_ROOT / "var", description="Where the embedded database and dev secrets live.")
    database_url: str = Field(
        "", description="postgresql://user:pass@host:5432/db (Postgres or Supabase); empty = SQLite in TTS_DATA_DIR."
    )
    redis_url: str = Field(
        "", description="redis://host:6379/0 shares limits and cache across replicas; empty = in-process."
    )
    redis_failure_mode: Literal["open", "closed"] = Field(
        "open", description="Redis unreachable: `open` serves with each replica's own limits until it is back "
        "(availability first), `closed` answers 503 `limits_unavailable` (limits first). The cache is bypassed "
        "either way.",
    )

    # --- Security ---
    tts_admin_token: str = Field("", description="Bearer token of the admin API; the admin API is disabled when empty.")
    voice_encryption_key: str = Field(
        "",
        description="Base64 of 32 bytes (AES-256-GCM) for voice audio at rest; "
        "empty = a dev key generated once in TTS_DATA_DIR.",
    )

    # --- Triton ---
    triton_grpc_url: str = Field(
        "localhost:8001", description="Triton gRPC endpoint (synthesis streams). `dns:///NAME:PORT` (the chart's "
        "default: its headless Service) routes across every address NAME resolves to, re-resolved every "
        "TRITON_DNS_REFRESH_S.",
    )
    triton_grpc_urls: str = Field(
        "", description="Comma-separated gRPC endpoints of several Triton replicas (`host:port,host:port`); each new "
        "stream goes to the least-loaded ready one. Empty = TRITON_GRPC_URL alone.",
    )
    triton_http_urls: str = Field(
        "", description="HTTP endpoints (health) of the TRITON_GRPC_URLS replicas, in the same order; "
        "empty = each replica's host on TRITON_HTTP_URL's port.",
    )
    triton_metrics_urls: str = Field(
        "", description="Metrics endpoints (queue time) of the TRITON_GRPC_URLS replicas, in the same order; "
        "empty = each replica's host on TRITON_METRICS_URL's port and path.",
    )
    triton_dns_refresh_s: float = Field(
        5.0, gt=0, description="Seconds between resolutions of a `dns:///` TRITON_GRPC_URL (new replicas get "
        "streams within this, departed ones drain).",
    )
    triton_health_interval_s: float = Field(
        1.0, gt=0, description="Seconds between readiness checks of each Triton replica (also their timeout) when "
        "routing across replicas.",
    )
    triton_http_url: str = Field("http://localhost:8000", description="Triton HTTP endpoint (health, model readiness).")
    triton_metrics_url: str = Field("http://localhost:8002/metrics", description="Triton Prometheus endpoint.")
    triton_model_repository: Path = Field(
        REPO_ROOT / "model_repository", description="Model repository served by `tts-gateway triton`."
    )
    triton_http_port: int = Field(8000, description="HTTP port `tts-gateway triton` starts Triton on.")
    triton_grpc_port: int = Field(8001, description="gRPC port `tts-gateway triton` starts Triton on.")
    triton_metrics_port: int = Field(8002, description="Metrics port `tts-gateway triton` starts Triton on.")
    triton_request_timeout_s: float = Field(60.0, description="Upper bound on one synthesis call to Triton.")

    # --- Models ---
    xtts_model_path: str = Field(
        "", description="Exported XTTS artifact served by Triton; empty = the tiny test weights."
    )

    # --- Web console ---
    grafana_url: str = Field(
        "", description="Base URL of the Grafana that shows this gateway's dashboards (e.g. http://localhost:3000); "
        "the console's admin view links to them when set.",
    )
    console_signin_code_file: str = Field(
        "", description="Dev stack only (`make run` sets it): the owner-only file holding the one-time code of the "
        "printed console sign-in link, which `POST /console/signin` exchanges once for the dev tenant's key. "
        "Empty = the exchange does not exist (404); never set it in production.",
    )

    # --- Limits ---
    max_concurrent_streams: int = Field(64, description="Streams served at once by one control-plane replica.")
    admission_max_wait_s: float = Field(
        1.0, ge=0, description="Admission control: a request that would wait longer than this for the engine to "
        "start it (its backlog over its measured service rate) gets 503 `engine_overloaded` with Retry-After at "
        "once instead of queueing; 0 = admit everything.",
    )
    admission_min_inflight: int = Field(
        4, ge=1, description="Admission control: engine requests in flight below which every request is admitted "
        "(the service rate is measured from them); above it a request is admitted only within "
        "ADMISSION_MAX_WAIT_S.",
    )
    admission_gate: bool = Field(
        True, description="Admission control: refuse a tenant over its fair share on every engine before its "
        "request is routed or its body read (key looked up only among those this replica authenticated within "
        "AUTH_CACHE_TTL_S): the flow's refusal at a fraction of the CPU; false = every refusal is decided in the "
        "synthesis flow.",
    )
    admission_share_interval_s: float = Field(
        0.2, ge=0, description="Admission control with REDIS_URL set: every this many seconds a replica publishes "
        "its engine backlogs per tenant and its completions to Redis and reads the other replicas', so shares and "
        "the bound hold over all replicas (decisions see the others' load as of up to about two intervals ago); "
        "0 = each replica decides on its own load only.",
    )

    # --- Planning ---
    first_segment_split: bool = Field(
        True, description="Cut a request's first sentence (and a realtime context's first piece) at its first "
        "natural boundary (a clause of 3-5 words, or after about 4 words of a long English sentence) so that "
        "audio starts before the whole sentence is synthesised; later segments stay whole sentences.",
    )

    # --- Text normalisation and pronunciation lexicons ---
    tts_normalize_default: Literal["auto", "on", "off"] = Field(
        "auto", description="Text normalisation when a request does not say (`normalize`): `auto` writes out "
        "numbers, dates, codes... in en, es, fr, de, it, pt and leaves other languages as written; `on` also "
        "refuses languages without rules; `off` sends text as written.",
    )
    lexicon_max_bytes: int = Field(100_000, ge=1000, description="Largest PLS document one lexicon may be (bytes).")
    lexicon_max_lexemes: int = Field(2000, ge=1, description="Most lexemes (entries) in one lexicon.")
    lexicon_max_count: int = Field(20, ge=1, description="Most lexicons one tenant may store.")
    lexicon_cache_ttl_s: float = Field(
        5.0, ge=0, description="Seconds a replica reuses a tenant's parsed lexicons before reading them again "
        "(changes made through this replica apply at once).",
    )

    # --- Audio cache (synthesis) ---
    audio_cache_ttl_s: int = Field(86400, description="Seconds a synthesised result stays in the audio cache.")
    audio_cache_max_bytes: int = Field(
        256 * 1024 * 1024, description="Total size of the in-process audio cache (Redis: bounded by its maxmemory)."
    )
    audio_cache_max_entry_bytes: int = Field(
        16 * 1024 * 1024, description="Results larger than this are not cached."
    )

    # --- Tenants, keys and the store's roles (control plane: tenancy) ---
    api_key_pepper: str = Field(
        "", description="Server-side secret mixed into API-key hashes (HMAC-SHA256), the same on every replica; "
        "changing it invalidates every issued key. Empty = a built-in constant (keys are 256-bit random).",
    )
    auth_cache_ttl_s: float = Field(
        5.0, ge=0, description="Seconds a replica reuses an API key's lookup (key and tenant) before reading it "
        "again; suspensions, rotations and limit changes made through this replica apply at once, through "
        "others within this. 0 = read the store on every request.",
    )
    database_app_role: str = Field(
        "tts_app", description="Postgres role tenant-scoped transactions switch to (row-level security applies); "
        "empty = use the connecting role as is.",
    )
    database_admin_role: str = Field(
        "tts_admin", description="Postgres role for tenant and key management (tenants, api_keys only); "
        "empty = use the connecting role as is.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
