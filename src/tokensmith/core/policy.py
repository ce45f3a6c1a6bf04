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
    registration: str | None = None
    """The dynamic client registration endpoint (RFC 7591), when registration is not off."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountPolicy:
    """Self-service (``core.self_service``): what an operator switched on, and the links' life."""

    signup: str = "off"
    """``off``, ``invite`` (only people an operator invited), ``open`` (anyone with a mailbox),
    ``domains`` (addresses in ``signup_domains``). Invitations are accepted in every mode but
    ``off``."""
    signup_domains: frozenset[str] = frozenset()
    email_verification: bool = True
    password_reset: bool = True
    mail_enabled: bool = False
    """Whether the server can send e-mail at all; without it, no flow that sends a link runs."""
    signup_ttl: int = 86400
    email_verification_ttl: int = 86400
    password_reset_ttl: int = 1800
    email_change: bool = True
    """Signed-in users may change their address (a link to the new address confirms it)."""
    email_change_ttl: int = 3600

    @property
    def signup_open(self) -> bool:
        return self.mail_enabled and self.signup in ("open", "domains")

    @property
    def invitations_open(self) -> bool:
        """Whether an invitation's link creates an account. No mail is needed to accept one: an
        operator may hand the link over themselves (``tokensmith users invite`` prints it)."""
        return self.signup in ("invite", "open", "domains")

    @property
    def reset_open(self) -> bool:
        return self.mail_enabled and self.password_reset

    @property
    def verification_open(self) -> bool:
        return self.mail_enabled and self.email_verification

    @property
    def email_change_open(self) -> bool:
        return self.mail_enabled and self.email_change


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
    accounts: AccountPolicy = AccountPolicy()
    client_metadata_documents: bool = True
    """Client ID Metadata Documents: a client_id that is an https URL is resolved by fetching
    it (``core.metadata_document``); advertised in the metadata."""
    client_metadata_allow_loopback: bool = False
    client_metadata_allowed_domains: tuple[str, ...] = ()
    client_metadata_blocked_domains: tuple[str, ...] = ()
    mfa_required: bool = False
    """Every sign-in needs a second factor (``core.mfa``); users without one are refused."""
    registration: str = "off"
    """Dynamic client registration (RFC 7591): ``off``, ``token`` (an initial access token is
    required) or ``open``."""
