"""``ServerPolicy``: everything the protocol core needs to know of the server's configuration.

A frozen value built at the edge from ``Settings`` (``Settings.policy()``), so that core never
imports the settings module: lifetimes, the signing algorithm, parameter limits, the issuer and
the absolute URLs of the endpoints it names (metadata, client-assertion audiences).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Absolute URLs of the server's endpoints (RFC 8414 §2)."""

    authorize: str
    token: str
    jwks: str
    userinfo: str
    logout: str
    revoke: str
    introspect: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerPolicy:
    issuer: str
    endpoints: Endpoints
    signing_alg: str
    """Algorithm of JWT access tokens."""
    access_token_ttl: int
    authorization_code_ttl: int
    interaction_ttl: int
    session_ttl: int
    """Lifetime of the SSO session a login starts."""
    id_token_ttl: int
    refresh_token_idle_ttl: int
    refresh_token_absolute_ttl: int
    public_refresh_token_idle_ttl: int
    """OAuth 2.1 §4.3.1: tokens of clients that cannot authenticate live shorter by default."""
    public_refresh_token_absolute_ttl: int
    client_cache_ttl: float
    max_param_length: int
    mfa_required: bool = False
    """Every sign-in needs a second factor (``core.mfa``); users without one are refused."""
