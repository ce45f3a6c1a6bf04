"""The schema, as SQLAlchemy Core tables. Times are integer Unix seconds; lists of scopes, grant
types and URIs are space-separated (none of them may contain a space). Changes go through a new
Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

server_secrets = Table(
    "ts_server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

apis = Table(
    "ts_apis",
    metadata,
    Column("identifier", String(2000), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("scope_descriptions", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("dynamic_clients", Boolean, nullable=False, server_default=false()),
)

client_documents = Table(
    "ts_client_documents",
    metadata,
    Column("url", String(2000), primary_key=True),
    Column("body", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_ts_client_documents_expires_at", "expires_at"),
)

clients = Table(
    "ts_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("client_type", String(16), nullable=False),
    Column("secret_digest", String(64)),
    Column("redirect_uris", Text, nullable=False),
    Column("grant_types", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    # the APIs the client may get tokens for, space-separated, the default first (0002)
    Column("apis", Text, nullable=False),
    Column("token_endpoint_auth_method", String(32), nullable=False),
    Column("first_party", Boolean, nullable=False),
    Column("native", Boolean, nullable=False),
    Column("can_introspect", Boolean, nullable=False),
    Column("access_token_format", String(16), nullable=False),
    Column("access_token_ttl", Integer),
    Column("refresh_token_idle_ttl", Integer),
    Column("refresh_token_absolute_ttl", Integer),
    Column("id_token_signed_response_alg", String(16), nullable=False),
    Column("post_logout_redirect_uris", Text, nullable=False),
    Column("jwks", Text),
    Column("jwks_uri", String(2000)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("origin", String(32), nullable=False, server_default="static"),
    # registered clients (RFC 7591/7592, revision 0004): the registration access token's digest
    # and the day the client last got a token (stale ones are pruned)
    Column("registration_token_digest", String(64)),
    Column("last_used_at", BigInteger),
    # a second factor is needed to sign in to this client (0009)
    Column("mfa_required", Boolean, nullable=False, server_default=false()),
)

users = Table(
    "ts_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("email", String(320), unique=True),
    Column("email_verified", Boolean, nullable=False),
    Column("name", String(200)),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

signing_keys = Table(
    "ts_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_key", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("activates_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger),
    Column("expires_at", BigInteger),
)

authorization_codes = Table(
    "ts_authorization_codes",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("redirect_uri", String(2000), nullable=False),
    Column("redirect_uri_sent", Boolean, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("audience", String(2000), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("nonce", Text),
    Column("auth_time", BigInteger, nullable=False),
    Column("session_id", String(64)),
    Column("grant_id", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger),
    # how the user authenticated (RFC 8176 values, space-separated) (0006)
    Column("amr", String(64), nullable=False, server_default="pwd"),
    # the user's security stamp when the code was issued (0010)
    Column("security_stamp", BigInteger, nullable=False, server_default="0"),
    Index("ix_ts_authorization_codes_expires_at", "expires_at"),
)

# A counter per subject, renewed by every event that ends a user's sessions or grants; codes
# record it and are refused when it changed (core.ports.SecurityStampStore, revision 0010). Kept
# when the user is deleted (an opaque subject and a number, no personal data).
security_stamps = Table(
    "ts_security_stamps",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("stamp", BigInteger, nullable=False),
)

grants = Table(
    "ts_grants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("audience", String(2000), nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("session_id", String(64)),
    Column("amr", String(64), nullable=False, server_default="pwd"),  # (0006)
    Index("ix_ts_grants_user_client", "user_id", "client_id"),
    Index("ix_ts_grants_session_id", "session_id"),
)

access_tokens = Table(
    "ts_access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("digest", String(64), unique=True),
    Column("grant_id", String(64)),
    Column("client_id", String(128), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("audience", String(2000), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Index("ix_ts_access_tokens_grant_id", "grant_id"),
    Index("ix_ts_access_tokens_expires_at", "expires_at"),
)

revoked_jtis = Table(
    "ts_revoked_jtis",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_ts_revoked_jtis_expires_at", "expires_at"),
)

used_jtis = Table(
    "ts_used_jtis",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_ts_used_jtis_expires_at", "expires_at"),
)

refresh_tokens = Table(
    "ts_refresh_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("absolute_expires_at", BigInteger, nullable=False),
    Column("rotated_at", BigInteger),
    Index("ix_ts_refresh_tokens_grant_id", "grant_id"),
    Index("ix_ts_refresh_tokens_expires_at", "expires_at"),
)

login_failures = Table(
    "ts_login_failures",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_ts_login_failures_expires_at", "expires_at"),
)

audit_events = Table(
    "ts_audit_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("client_id", String(128)),
    Column("user_id", String(64)),
    Column("address", String(64)),
    Column("detail", Text, nullable=False),
    Index("ix_ts_audit_events_at", "at"),
    Index("ix_ts_audit_events_user_id", "user_id"),
)

consents = Table(
    "ts_consents",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("client_id", String(128), primary_key=True),
    # the API the consent is for ('' for a request without one: OpenID Connect scopes only)
    Column("api", String(2000), primary_key=True),
    Column("scope", String(200), primary_key=True),
    Column("granted_at", BigInteger, nullable=False),
)

sessions = Table(
    "ts_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("mfa_at", BigInteger),  # when a second factor was last presented (0006)
    Index("ix_ts_sessions_expires_at", "expires_at"),
)

interactions = Table(
    "ts_interactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("browser_digest", String(64), nullable=False),
    Column("request", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # the user who passed the password and owes a second factor (0006)
    Column("pending_user_id", String(64)),
    Column("pending_auth_time", BigInteger),
    # the user's security stamp read before that password was checked (0011)
    Column("pending_stamp", BigInteger),
    Index("ix_ts_interactions_expires_at", "expires_at"),
)

# The links of core.self_service, by the digest of their secret (revision 0005). ``data`` holds a
# pending registration's name and password hash (JSON), nothing for the other purposes.
account_tokens = Table(
    "ts_account_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("email", String(320), nullable=False),
    Column("user_id", String(64)),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),
    Index("ix_ts_account_tokens_user_id", "user_id"),
    Index("ix_ts_account_tokens_expires_at", "expires_at"),
)

# Second factors (0006): a TOTP key per user, sealed (core.secret_box), and recovery codes as
# digests.
mfa_totp = Table(
    "ts_mfa_totp",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("confirmed_at", BigInteger),
    Column("last_step", BigInteger),
)

passkeys = Table(
    "ts_passkeys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("credential_id", String(1400), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("transports", String(200), nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("user_verified", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger),
    UniqueConstraint("credential_id", name="uq_ts_passkeys_credential_id"),
    Index("ix_ts_passkeys_user_id", "user_id"),
)

mfa_recovery_codes = Table(
    "ts_mfa_recovery_codes",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),
)

# Initial access tokens for dynamic client registration (RFC 7591 §3), by the digest of their
# secret (revision 0004). ``uses_left`` NULL: unlimited; ``expires_at`` NULL: never.
initial_access_tokens = Table(
    "ts_initial_access_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("uses_left", Integer),
    Column("note", String(200), nullable=False),
)
