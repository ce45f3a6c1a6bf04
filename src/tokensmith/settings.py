"""Settings of the authorization server, from ``TOKENSMITH_*`` variables and an optional ``.env``.

There is no module-level instance: build one with ``Settings()`` (environment) or
``Settings(issuer=..., database_url=...)`` and hand it to ``create_app``.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SigningAlg = Literal["ES256", "EdDSA", "RS256"]


class Settings(BaseSettings):
    """Every option of the authorization server, with its safe default."""

    model_config = SettingsConfigDict(
        env_prefix="TOKENSMITH_", env_file=".env", extra="ignore", frozen=True
    )

    issuer: str = Field(
        "http://127.0.0.1:8000",
        description="The issuer identifier: an https URL (http only for loopback), no query or "
        "fragment. Every endpoint URL is derived from it; it is never taken from the Host header.",
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./tokensmith.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(10, ge=1, description="PostgreSQL connection pool size.")
    database_max_overflow: int = Field(10, ge=0)
    auto_migrate: bool = Field(True, description="Bring the schema up to date at start-up.")
    redis_url: SecretStr | None = Field(
        None,
        description="redis://... Optional: short-lived state (codes, login transactions, jti "
        "caches, the JWT deny-list, rate-limit counters) lives there; without it, in SQL.",
    )
    redis_prefix: str = Field("ts:", description="Prefix of every Redis key.")
    redis_timeout: float = Field(2.0, gt=0, description="Seconds per Redis operation.")

    # Lifetimes, in seconds.
    access_token_ttl: int = Field(600, ge=30, le=86400)
    authorization_code_ttl: int = Field(60, ge=10, le=600)
    interaction_ttl: int = Field(600, ge=60, le=3600, description="Login/consent transaction.")
    session_ttl: int = Field(8 * 3600, ge=300, description="SSO login session lifetime.")
    refresh_token_idle_ttl: int = Field(14 * 86400, ge=300)
    refresh_token_absolute_ttl: int = Field(90 * 86400, ge=300)
    public_refresh_token_idle_ttl: int = Field(
        86400, ge=300, description="Idle lifetime of public clients' refresh tokens (shorter)."
    )
    public_refresh_token_absolute_ttl: int = Field(
        30 * 86400, ge=300, description="Absolute lifetime of public clients' refresh tokens."
    )
    id_token_ttl: int = Field(600, ge=60, le=86400)

    # Keys and secrets.
    signing_alg: SigningAlg = Field("ES256", description="Algorithm of JWT access tokens.")
    key_encryption_key: SecretStr | None = Field(
        None,
        description="Base64url of 32 random bytes. When set, private signing keys are stored "
        "encrypted with AES-256-GCM under it.",
    )
    pepper: SecretStr | None = Field(
        None,
        description="Server secret for HMAC-SHA256 digests of client secrets, codes and tokens. "
        "When unset, one is generated on first start and kept in the database.",
    )

    # Password hashing (argon2id). Defaults are argon2-cffi's RFC 9106 low-memory profile.
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_memory_cost: int = Field(65536, ge=8, description="KiB")
    password_hash_parallelism: int = Field(4, ge=1)

    # Endpoint paths.
    authorize_path: str = "/authorize"
    token_path: str = "/token"
    jwks_path: str = "/jwks.json"
    userinfo_path: str = "/userinfo"
    account_path: str = "/account"
    logout_path: str = "/logout"
    revoke_path: str = "/revoke"
    introspect_path: str = "/introspect"
    login_path: str = "/login"
    consent_path: str = "/consent"

    key_publish_ahead: int = Field(
        3600,
        ge=0,
        description="Seconds a new signing key is published in the JWKS before it signs, so "
        "that resource servers with a cached JWKS know it first. Keep it above jwks_max_age.",
    )
    key_reload_interval: int = Field(
        30, ge=1, description="How often each process re-reads the signing keys (seconds)."
    )
    jwks_max_age: int = Field(
        300, ge=0, le=86400, description="Cache-Control max-age of the JWKS, in seconds."
    )

    client_cache_ttl: float = Field(
        5.0,
        ge=0,
        description="Seconds a process may use a cached client or API before re-reading it; "
        "a secret rotated or a client deleted elsewhere takes effect within this time. 0 "
        "disables the cache.",
    )

    token_rate_limit: str | None = Field(
        "600/minute",
        description="Requests per client id at the token, revocation and introspection "
        "endpoints (limits notation, e.g. '600/minute'); empty to disable.",
    )

    prune_interval: int = Field(
        3600,
        ge=0,
        description="Seconds between automatic prunes of expired rows inside `serve` "
        "(0: never; run `tokensmith db prune` from cron instead).",
    )

    # Limits.
    max_form_bytes: int = Field(16 * 1024, ge=1024)
    max_param_length: int = Field(4096, ge=256)
    # Slow and oversized requests: a body is read whole under a deadline before any database
    # work; the request line and headers are bounded while uvicorn parses them (`serve`).
    form_read_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a whole request body (forms of the token, "
        "revocation, introspection, userinfo, authorize, login, consent, logout and account "
        "endpoints); later: 408 and the connection is closed.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=8 * 1024,
        le=1024 * 1024,
        description="Most bytes of a request line and headers together (`serve`); more: 431 "
        "and the connection is closed, refused while the headers arrive.",
    )
    header_read_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request line and headers, from opening the "
        "connection (or from the first byte of a later request on it); later: 408 and the "
        "connection is closed (`serve`).",
    )
    max_header_fields: int = Field(
        100,
        ge=16,
        le=10_000,
        description="Most header fields of a request (`serve`); more: 431 and the connection "
        "is closed.",
    )

    cookie_prefix: str = "ts"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field("json", description="Log lines of `serve`.")
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted (the client address of rate limits and audit events). "
        "Empty: none. The issuer never comes from these headers or from Host.",
    )

    @field_validator("token_rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if not value:
            return None
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("token_rate_limit must look like '600/minute'") from None
        return value

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("issuer must be an absolute https URL")
        if parts.query or parts.fragment:
            raise ValueError("issuer must not have a query or fragment")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("issuer must use https unless it is a loopback address")
        return value.rstrip("/")

    @property
    def is_https(self) -> bool:
        return self.issuer.startswith("https://")

    def kek(self) -> bytes | None:
        """The decoded key-encryption key, if one is configured."""
        from tokensmith.core.keys import parse_kek

        secret = self.key_encryption_key
        return parse_kek(secret.get_secret_value()) if secret is not None else None

    def url(self, path: str) -> str:
        """The absolute URL of one of the server's endpoints."""
        return self.issuer + path
