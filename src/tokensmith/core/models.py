"""The protocol's values: frozen, slotted dataclasses. Times are integer Unix seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

ClientType = Literal["confidential", "public"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]
TokenFormat = Literal["jwt", "opaque"]
ClientOrigin = Literal["static", "registered", "metadata_document"]
"""How a client came to be known: ``static``, created by the operator (CLI, admin service);
``registered``, by dynamic client registration (RFC 7591); ``metadata_document``, resolved from
the Client ID Metadata Document its ``client_id`` (an https URL) names. Clients of the last two
origins are *dynamic*: they get tokens only for APIs open to dynamic clients, and only for the
API their request names (``resource``)."""
CLIENT_ORIGINS: tuple[ClientOrigin, ...] = ("static", "registered", "metadata_document")

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_REFRESH_TOKEN = "refresh_token"
REFUSED_GRANTS: MappingProxyType[str, str] = MappingProxyType(
    {
        "password": "the password grant is not supported (OAuth 2.1 removes it)",
        "implicit": "the implicit grant is not supported (OAuth 2.1 removes it)",
    }
)
"""Grants OAuth 2.1 removes (§10), with why: refused at registration and at the token endpoint."""


@dataclass(frozen=True, slots=True)
class Api:
    """A resource server: its identifier is the ``aud`` of the access tokens issued for it."""

    identifier: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    descriptions: dict[str, str] = field(default_factory=dict)
    """Human descriptions of the scopes, shown on the consent page."""
    dynamic_clients: bool = False
    """Whether dynamic clients (registered at run time, or known by a metadata document) may get
    tokens for this API (``tokensmith apis create --dynamic-clients``)."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    client_type: ClientType
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    apis: tuple[str, ...]
    """The identifiers of the APIs (token audiences) this client may get tokens for; the first
    is its default API. Any other ``resource`` is ``invalid_target`` (RFC 8707 §2). A dynamic
    client (``origin`` not ``static``) has none: it may use every API open to dynamic clients,
    one at a time, named by ``resource``."""
    token_endpoint_auth_method: AuthMethod
    first_party: bool = False
    native: bool = False
    can_introspect: bool = False
    mfa_required: bool = False
    """Whether signing in to this client needs a second factor, like the server-wide
    ``mfa_required`` policy but for this client only."""
    access_token_format: TokenFormat = "jwt"
    access_token_ttl: int | None = None
    refresh_token_idle_ttl: int | None = None
    refresh_token_absolute_ttl: int | None = None
    id_token_signed_response_alg: str = "RS256"
    post_logout_redirect_uris: tuple[str, ...] = ()
    jwks: str | None = None
    jwks_uri: str | None = None
    secret_digest: str | None = field(default=None, repr=False)
    created_at: int = 0
    origin: ClientOrigin = "static"
    """How the client came to be known (``ClientOrigin``)."""
    registration_token_digest: str | None = field(default=None, repr=False)
    """A registered client's ``registration_access_token`` (RFC 7592), as its HMAC digest."""
    last_used_at: int | None = None
    """When a registered client last got a token, to the day (``core.dynamic_registration``):
    stale registered clients are pruned after ``registered_client_idle_days``."""

    @property
    def is_confidential(self) -> bool:
        return self.client_type == "confidential"

    @property
    def is_dynamic(self) -> bool:
        """Registered at run time or known by a metadata document, not by the operator."""
        return self.origin != "static"

    @property
    def default_api(self) -> str | None:
        """The API a request without ``resource`` is for: the first allowed one. A dynamic
        client has none: it must name the API it wants a token for."""
        if self.is_dynamic:
            return None
        return self.apis[0] if self.apis else None

    def might_use(self, identifier: str) -> bool:
        """Whether a request for the API ``identifier`` is worth looking up: for a static client,
        one of its APIs; for a dynamic client, any (the API's flag decides, ``may_use``)."""
        return self.is_dynamic or identifier in self.apis

    def may_use(self, api: Api) -> bool:
        """Whether this client may get tokens whose audience is the registered ``api``: one of
        its APIs for a static client; an API open to dynamic clients for a dynamic one."""
        if self.is_dynamic:
            return api.dynamic_clients
        return api.identifier in self.apis


@dataclass(frozen=True, slots=True)
class InitialAccessToken:
    """An operator's permission to register clients dynamically (RFC 7591 §3, the "initial
    access token"): stored only as the HMAC digest of its secret; ``uses_left`` ``None`` means
    any number of registrations until it expires (``expires_at`` ``None``: never)."""

    digest: str
    created_at: int
    expires_at: int | None = None
    uses_left: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    email: str | None
    email_verified: bool
    name: str | None
    disabled: bool
    password_hash: str | None = field(repr=False)
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request.

    RFC 6749 §4.1.1, RFC 7636, RFC 8707, OpenID Connect Core §3.1.2.1.
    """

    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str
    audience: str
    nonce: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    hint_subject: str | None = None
    """The ``sub`` of a verified ``id_token_hint``: the user the client expects."""
    acr_values: tuple[str, ...] = ()
    """The requested Authentication Context Class References, in order of preference
    (OpenID Connect Core §3.1.2.1; ``core.mfa`` says which ones ask for a second factor)."""


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    digest: str
    client_id: str
    user_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    scopes: tuple[str, ...]
    audience: str
    code_challenge: str
    nonce: str | None
    auth_time: int
    session_id: str | None
    grant_id: str
    expires_at: int
    consumed_at: int | None = None
    amr: tuple[str, ...] = ("pwd",)
    """How the user authenticated (RFC 8176 values of the session), for the ID token."""
    security_stamp: int = 0
    """The user's security stamp when the code was issued (``SecurityStampStore``): a code
    whose user has a new one since is refused."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one authorization produced: every token issued from it belongs to it (the family)."""

    id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    audience: str
    auth_time: int
    created_at: int
    revoked_at: int | None = None
    session_id: str | None = None
    amr: tuple[str, ...] = ("pwd",)
    """How the user authenticated for this grant (RFC 8176): the ID tokens' ``amr``/``acr``."""


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """An issued access token kept server-side: every opaque token, and JWTs of user grants
    (so that revoking the grant revokes them)."""

    jti: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    audience: str
    issued_at: int
    expires_at: int
    grant_id: str | None = None
    digest: str | None = None
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token (stored by digest). Rotation marks it ``rotated_at``; presenting a rotated
    one again is reuse, which revokes its grant (the family)."""

    digest: str
    grant_id: str
    client_id: str
    issued_at: int
    expires_at: int
    absolute_expires_at: int
    rotated_at: int | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A user's SSO login session at the authorization server."""

    digest: str
    user_id: str
    auth_time: int
    expires_at: int
    amr: tuple[str, ...] = ("pwd",)
    """The methods the user authenticated with (RFC 8176), ``mfa`` among them once a second
    factor was used (``core.mfa``)."""
    mfa_at: int | None = None
    """When the second factor was last used in this session (``None``: never)."""


@dataclass(frozen=True, slots=True)
class PasskeyCredential:
    """A user's passkey (WebAuthn public key credential, ``core.passkeys``): the credential id
    and COSE public key (base64url), the last signature counter seen, a name the user gave it,
    and when it was added and last used."""

    id: str
    user_id: str
    credential_id: str
    public_key: str = field(repr=False)
    sign_count: int
    name: str
    created_at: int
    transports: tuple[str, ...] = ()
    backup_eligible: bool = False
    user_verified: bool = False
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class TotpCredential:
    """A user's TOTP authenticator (RFC 6238): its key sealed at rest (``core.secret_box``),
    active once confirmed with a code, and the last time step used (a code is accepted once)."""

    user_id: str
    sealed_secret: str = field(repr=False)
    created_at: int
    confirmed_at: int | None = None
    last_step: int | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """A pending authorization request between ``/authorize`` and the login/consent pages."""

    id: str
    browser_digest: str
    request: AuthorizationRequest
    created_at: int
    expires_at: int
    pending_user_id: str | None = None
    """The user whose password was verified in this interaction and who must still present a
    second factor (``core.mfa``); no session exists for them until they do."""
    pending_auth_time: int = 0
    """When that password was verified."""
    pending_stamp: int | None = None
    """The user's security stamp (``ports.SecurityStampStore``) read before that password was
    checked: the second step is refused once it changed (a password changed or reset, ...);
    ``None`` (an interaction stored before revision 0011) is refused too."""


@dataclass(frozen=True, slots=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_in: int
    scopes: tuple[str, ...]
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(self.scopes),
        }
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            out["id_token"] = self.id_token
        return out


@dataclass(frozen=True, slots=True)
class AccountToken:
    """A link sent by e-mail (``core.self_service``): stored only as the HMAC digest of its
    secret, for one purpose, single-use (``used_at``) and expiring."""

    digest: str
    purpose: str
    """``signup`` (a pending registration), ``verify_email`` or ``reset_password``."""
    email: str
    user_id: str | None
    created_at: int
    expires_at: int
    data: dict[str, str] = field(default_factory=dict, repr=False)
    """What a pending registration needs to become an account (its name and password hash)."""
    used_at: int | None = None
