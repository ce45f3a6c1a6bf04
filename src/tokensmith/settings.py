"""Settings of the authorization server, from ``TOKENSMITH_*`` variables and an optional ``.env``.

There is no module-level instance: build one with ``Settings()`` (environment) or
``Settings(issuer=..., database_url=...)`` and hand it to ``create_app``.
"""

from __future__ import annotations

import importlib
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokensmith.core.accounts import Accounts
from tokensmith.core.password_rules import (
    BreachedPasswordChecker,
    CommonPasswords,
    PasswordRules,
)
from tokensmith.core.policy import AccountPolicy, Endpoints, ServerPolicy

SigningAlg = Literal["ES256", "EdDSA", "RS256"]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_METRICS_TOKEN_LENGTH = 32


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
    database_pool_size: int = Field(
        20,
        ge=1,
        description="PostgreSQL connections each process keeps open once it has needed them.",
    )
    database_max_overflow: int = Field(
        0,
        ge=0,
        description=(
            "Connections a process may open beyond the pool, closed as soon as they are "
            "returned: under steady load each one is a new PostgreSQL backend per request."
        ),
    )
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
    # Logins verify passwords on a pool of this many threads, off the event loop (argon2-cffi
    # releases the GIL); more logins at once wait their turn in the pool's queue. Each hash in
    # progress holds password_hash_memory_cost KiB and password_hash_parallelism threads.
    password_hash_workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Threads that verify passwords (at most this many argon2 hashes at once); "
        "unset: the CPUs this process may run on minus one, at least 1 (one CPU stays the "
        "event loop's).",
    )
    password_hash_queue: int = Field(
        32,
        ge=0,
        le=100_000,
        description="Password operations (logins, sign-ups, resets, password changes) that may "
        "wait for a hashing thread; one more is refused at once with 503 and Retry-After "
        "instead of waiting tens of seconds. 0: no bound.",
    )
    accounts: str = Field(
        "",
        description="Bring your own users: 'module:factory', a callable returning an "
        "implementation of tokensmith.core.accounts.Accounts (called with no argument). "
        "Empty: tokensmith's own users table. create_app(accounts=...) takes precedence.",
    )
    password_hash_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="How many nice levels below the event loop the hashing threads run "
        "(Linux; capped at 19, the lowest): logins use the CPU the loop leaves, so they cannot "
        "starve token requests. argon2's lane threads (password_hash_parallelism of them per "
        "hash) inherit it: at 10, four lanes together weighed 43 % of the loop's CPU share; at "
        "19, 6 %.",
    )

    # Self-service accounts and e-mail (docs/accounts.md).
    signup: Literal["off", "invite", "open", "domains"] = Field(
        "off",
        description="Self-service sign-up: off; invite: only people an operator invited "
        "(`tokensmith users invite`, POST /admin/v1/invitations); open to anyone who can read "
        "the mailbox of the address they give; or domains: only addresses at "
        "signup_allowed_domains. Open and domains need an email_backend (the account is created "
        "when the link sent by e-mail is followed); invitations are accepted in every mode but "
        "off.",
    )
    signup_allowed_domains: str = Field(
        "",
        description="Comma-separated e-mail domains that may sign up when signup=domains "
        "(exact match: example.com does not admit mail.example.com).",
    )
    email_verification: bool = Field(
        True,
        description="Signed-in users with an unconfirmed address may ask for a verification "
        "link on the account page (needs an email_backend).",
    )
    password_reset: bool = Field(
        True,
        description="The forgotten-password page sends reset links (needs an email_backend).",
    )
    email_change: bool = Field(
        True,
        description="Signed-in users may change their address on the account page, confirmed "
        "by a link sent to the new address (needs an email_backend and accounts that declare "
        "update_email).",
    )
    signup_ttl: int = Field(
        86400, ge=600, le=7 * 86400, description="Seconds a sign-up link stays valid."
    )
    invitation_ttl: int = Field(
        7 * 86400,
        ge=600,
        le=30 * 86400,
        description="Seconds an invitation stays valid unless its creator gives another lifetime.",
    )
    email_verification_ttl: int = Field(
        86400, ge=600, le=7 * 86400, description="Seconds a verification link stays valid."
    )
    password_reset_ttl: int = Field(
        1800, ge=300, le=86400, description="Seconds a password-reset link stays valid."
    )
    email_change_ttl: int = Field(
        3600,
        ge=600,
        le=86400,
        description="Seconds the link that confirms a new address (e-mail change) stays valid.",
    )
    password_min_length: int = Field(
        15,
        ge=8,
        le=64,
        description="Fewest characters of a new password. NIST SP 800-63B-4: 15 when the "
        "password is the only factor, 8 only where every user has a second factor.",
    )
    password_blocklist: bool = Field(
        True,
        description="Refuse new passwords found in the list of common passwords shipped with "
        "tokensmith (sign-up, reset, `users create`, `users set-password`).",
    )
    email_backend: Literal["none", "smtp", "outbox"] = Field(
        "none",
        description="How e-mail goes out: none (no flow that sends mail is offered); smtp; or "
        "outbox (development: messages are written to outbox_dir and listed at outbox_path).",
    )
    email_from: str = Field(
        "tokensmith <no-reply@localhost>", description="The From of every message."
    )
    smtp_host: str = Field("localhost", description="SMTP server (submission).")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls (port 587), tls (implicit TLS, port 465), or none (only to a "
        "loopback smtp_host: links must not cross a network in clear text).",
    )
    smtp_ca_file: str | None = Field(
        None,
        description="PEM file of the certificate authorities that may sign the SMTP server's "
        "certificate (a private CA); default: the system's.",
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user, if the server needs one.")
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(10.0, gt=0, le=120, description="Seconds per SMTP operation.")
    outbox_dir: str = Field(
        "./tokensmith-outbox",
        description="Folder of the development outbox (email_backend=outbox).",
    )

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
    signup_path: str = "/signup"
    confirm_path: str = "/confirm"
    forgot_password_path: str = "/forgot-password"
    reset_password_path: str = "/reset-password"
    outbox_path: str = "/dev/outbox"
    mfa_path: str = Field(
        "/login/mfa", description="The sign-in's second step: the code of a second factor."
    )

    # Second factors (docs/accounts.md).
    mfa_required: bool = Field(
        False,
        description="Every sign-in needs a second factor: a single-factor session is stepped "
        "up, and a user without a factor is sent back to the application with "
        "unmet_authentication_requirements (they set one up on the account page first).",
    )
    totp_label: str | None = Field(
        None,
        description="The name authenticator apps show for this server's accounts (the issuer "
        "in the otpauth:// URI). Default: the issuer's host name.",
    )

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

    # Client ID Metadata Documents (docs/mcp.md): a client_id that is an https URL.
    client_metadata_documents: bool = Field(
        True,
        description="Accept clients identified by a Client ID Metadata Document (an https URL as "
        "client_id, fetched safely); advertised as client_id_metadata_document_supported. Such "
        "clients get tokens only for APIs created with --dynamic-clients.",
    )
    client_metadata_allow_loopback: bool = Field(
        False,
        description="Development only: metadata documents may live on a loopback address "
        "(127.0.0.1, ::1, localhost), over http or https.",
    )
    client_metadata_allowed_domains: tuple[str, ...] = Field(
        (),
        description="If not empty, only client ID URLs on these domains (or their subdomains) "
        'are accepted; a JSON list such as ["claude.ai", "vscode.dev"].',
    )
    client_metadata_blocked_domains: tuple[str, ...] = Field(
        (),
        description="Client ID URLs on these domains (or their subdomains) are refused.",
    )
    client_metadata_max_bytes: int = Field(
        5 * 1024, ge=512, le=1024 * 1024, description="Largest metadata document read, in bytes."
    )
    client_metadata_timeout: float = Field(
        5.0, gt=0, le=60, description="Seconds a metadata document fetch may take in all."
    )
    client_metadata_max_cache: int = Field(
        86400,
        ge=0,
        description="Longest a fetched metadata document is reused, in seconds, whatever its "
        "Cache-Control says (without caching headers: 5 minutes, at most this).",
    )

    # Rate limits at the token, revocation and introspection endpoints (server/ratelimit.py),
    # counted once client authentication is decided, so a claimed client id spends nothing.
    token_rate_limit: str | None = Field(
        "600/minute",
        description="Requests per authenticated client at each of the token, revocation and "
        "introspection endpoints; a public client's requests per client id and client address "
        "(limits notation, e.g. '600/minute'); empty to disable.",
    )
    token_failure_rate_limit: str | None = Field(
        "60/minute",
        description="Failed client authentications per client address at the token, "
        "revocation and introspection endpoints together; past it every request from that "
        "address is refused (429) before authentication. Empty to disable.",
    )

    # Dynamic client registration (RFC 7591/7592, core.dynamic_registration).
    registration: Literal["off", "token", "open"] = Field(
        "token",
        description="Dynamic client registration at /register: off (no endpoint), token (an "
        "initial access token from `tokensmith registration token create` is required) or "
        "open (anyone may register a client).",
    )
    registration_rate_limit: str | None = Field(
        "20/hour",
        description="Registration requests (POST /register) per client address (limits "
        "notation); empty to disable.",
    )
    registered_client_idle_days: int = Field(
        90,
        ge=0,
        description="Days a dynamically registered client may go without getting a token "
        "before pruning deletes it (0: never).",
    )

    prune_interval: int = Field(
        3600,
        ge=0,
        description="Seconds between automatic prunes of expired rows inside `serve` "
        "(0: never; run `tokensmith db prune` from cron instead).",
    )
    # Audit events hold user ids and client addresses (personal data): keep them long enough to
    # investigate an incident found months later (a year, as PCI DSS 10.5.1 asks of audit
    # trails), then let pruning delete them (GDPR art. 5(1)(e), storage limitation).
    audit_retention_days: int = Field(
        365,
        ge=0,
        description="Days an audit event is kept before `tokensmith db prune` and the pruning "
        "inside `serve` delete it (0: keep forever).",
    )
    gc_freeze: bool = Field(
        False,
        description="Once the server has started, leave every object alive then (the app's "
        "modules, routes, schemas and keys) out of Python's later garbage collections "
        "(`gc.freeze`): a full collection then scans only what the requests left behind, "
        "instead of pausing every request in flight for ~80 ms to scan the whole app "
        "(docs/performance.md). `tokensmith serve` turns it on unless this is set; set it "
        "when you run the app under uvicorn or gunicorn yourself.",
    )
    audit_flush_interval: float = Field(
        0.1,
        gt=0,
        le=60,
        description="Seconds between the background writes of queued audit events (one "
        "transaction per batch of up to 500, on the writer's own database connection).",
    )
    audit_queue_size: int = Field(
        10_000,
        ge=100,
        description="Audit events held in memory while the database does not take them; "
        "beyond it the oldest are dropped (counted in "
        "`tokensmith_audit_events_dropped_total`, logged).",
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

    cookie_prefix: str = Field(
        "tokensmith_as",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Names the server's cookies: `<prefix>_browser` and `<prefix>_session` "
        "(`__Host-` in front when the issuer is https). The default never collides with the "
        "client toolkit's `tsc_...` cookies when both run on one host (cookies are not isolated "
        "by port). Earlier versions used `ts`: set `ts` to keep signed-in users' sessions "
        "across the upgrade.",
    )
    product_name: str = Field(
        "tokensmith",
        min_length=1,
        max_length=60,
        description="The name the server's pages carry in their title and header (e.g. "
        '"Example Corp sign-in").',
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field("json", description="Log lines of `serve`.")
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    # Who may read /metrics (token volumes, error counts): by default only a scraper on this
    # machine. Everyone else gets the 404 of an unknown path.
    metrics_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="Comma-separated addresses or networks (CIDR) that may read /metrics over a "
        "direct connection (a request carrying X-Forwarded-For, Forwarded or X-Real-IP came "
        "through a proxy and is not let in by address). Empty: none.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="A bearer token (at least 32 characters) that opens /metrics from any "
        "address: `Authorization: Bearer <token>`, compared in constant time.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted (the client address of rate limits and audit events). "
        "Empty: none. The issuer never comes from these headers or from Host.",
    )

    @field_validator("token_rate_limit", "token_failure_rate_limit", "registration_rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{info.field_name} must look like '600/minute'") from None
        return value

    @field_validator("metrics_allow_ips")
    @classmethod
    def _check_metrics_allow_ips(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"metrics_allow_ips: {item!r} is not an IP address or network (CIDR); "
                    "use 0.0.0.0/0,::/0 to allow every address"
                ) from None
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"metrics_token must be at least {MIN_METRICS_TOKEN_LENGTH} characters long"
            )
        return value

    @field_validator("email_from")
    @classmethod
    def _check_email_from(cls, value: str) -> str:
        from email.utils import parseaddr

        address = parseaddr(value)[1]
        if "\r" in value or "\n" in value or "@" not in address:
            raise ValueError("email_from must be an address, e.g. 'Example <no-reply@example.com>'")
        return value

    @field_validator("smtp_security")
    @classmethod
    def _check_smtp_security(cls, value: str, info: ValidationInfo) -> str:
        host = info.data.get("smtp_host", "localhost")
        if value == "none" and host not in LOOPBACK_HOSTS:
            raise ValueError(
                "smtp_security=none is only allowed with a loopback smtp_host; use starttls or tls"
            )
        return value

    def signup_domains(self) -> frozenset[str]:
        items = (part.strip().lower() for part in self.signup_allowed_domains.split(","))
        return frozenset(item for item in items if item)

    def load_accounts(self) -> Accounts | None:
        """The ``Accounts`` named by ``accounts`` (``module:factory``), or ``None`` when empty."""
        if not self.accounts:
            return None
        module_name, _, attr = self.accounts.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        made = factory()
        if not isinstance(made, Accounts):
            raise TypeError(f"{self.accounts} did not return a tokensmith Accounts implementation")
        return made

    @field_validator("accounts")
    @classmethod
    def _check_accounts(cls, value: str) -> str:
        value = value.strip()
        module_name, colon, attr = value.partition(":")
        if value and (not colon or not module_name or not attr.isidentifier()):
            raise ValueError("accounts must be 'module:factory' (or empty)")
        return value

    def password_rules(self, checker: BreachedPasswordChecker | None = None) -> PasswordRules:
        """The rules for new passwords (``core.password_rules``): ``checker``, else the shipped
        list when ``password_blocklist`` is on."""
        if checker is None and self.password_blocklist:
            checker = CommonPasswords()
        return PasswordRules(min_length=self.password_min_length, checker=checker)

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

    def metrics_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The networks of ``metrics_allow_ips`` (validated when the settings were made)."""
        items = (part.strip() for part in self.metrics_allow_ips.split(","))
        return tuple(ip_network(item, strict=False) for item in items if item)

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

    def policy(self) -> ServerPolicy:
        """What the protocol core needs of these settings, as a frozen value."""
        url = self.url
        return ServerPolicy(
            issuer=self.issuer,
            endpoints=Endpoints(
                authorize=url(self.authorize_path),
                token=url(self.token_path),
                jwks=url(self.jwks_path),
                userinfo=url(self.userinfo_path),
                logout=url(self.logout_path),
                revoke=url(self.revoke_path),
                introspect=url(self.introspect_path),
                registration=url("/register") if self.registration != "off" else None,
            ),
            registration=self.registration,
            signing_alg=self.signing_alg,
            access_token_ttl=self.access_token_ttl,
            authorization_code_ttl=self.authorization_code_ttl,
            interaction_ttl=self.interaction_ttl,
            session_ttl=self.session_ttl,
            id_token_ttl=self.id_token_ttl,
            refresh_token_idle_ttl=self.refresh_token_idle_ttl,
            refresh_token_absolute_ttl=self.refresh_token_absolute_ttl,
            public_refresh_token_idle_ttl=self.public_refresh_token_idle_ttl,
            public_refresh_token_absolute_ttl=self.public_refresh_token_absolute_ttl,
            client_cache_ttl=self.client_cache_ttl,
            max_param_length=self.max_param_length,
            accounts=AccountPolicy(
                signup=self.signup,
                signup_domains=self.signup_domains(),
                email_verification=self.email_verification,
                password_reset=self.password_reset,
                mail_enabled=self.email_backend != "none",
                signup_ttl=self.signup_ttl,
                email_verification_ttl=self.email_verification_ttl,
                password_reset_ttl=self.password_reset_ttl,
                email_change=self.email_change,
                email_change_ttl=self.email_change_ttl,
            ),
            client_metadata_documents=self.client_metadata_documents,
            client_metadata_allow_loopback=self.client_metadata_allow_loopback,
            client_metadata_allowed_domains=tuple(
                d.lower() for d in self.client_metadata_allowed_domains
            ),
            client_metadata_blocked_domains=tuple(
                d.lower() for d in self.client_metadata_blocked_domains
            ),
            mfa_required=self.mfa_required,
        )

    def totp_issuer_label(self) -> str:
        """The issuer name in TOTP enrolment URIs: ``totp_label``, or the issuer's host."""
        return self.totp_label or (urlsplit(self.issuer).hostname or "tokensmith")
