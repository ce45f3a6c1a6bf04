"""Registering APIs, clients and users: validation and construction, no I/O.

Policy: redirect URIs per ``redirect_uris.check_registrable``; public clients authenticate with
``none`` and cannot use client credentials; confidential clients get a 256-bit secret, shown once
and stored as an HMAC digest; the implicit and password grants do not exist here.

Each client is registered with the APIs it may get tokens for (RFC 8707 audiences; the first is
its default) and the scopes it may ask: every scope that is not an OpenID Connect scope must be
defined by one of those APIs. A client with no API gets OpenID Connect scopes only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import jwt

from tokensmith.core import scopes as scope_rules
from tokensmith.core.errors import InvalidClientMetadata
from tokensmith.core.models import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    REFUSED_GRANTS,
    Api,
    AuthMethod,
    Client,
    ClientOrigin,
    ClientType,
    TokenFormat,
    User,
)
from tokensmith.core.passwords import (
    check_password_policy,
    check_single_script,
    normalize_email,
    normalize_login,
)
from tokensmith.core.redirect_uris import check_registrable
from tokensmith.core.scopes import OIDC_SCOPES
from tokensmith.core.secrets import CLIENT_ID_PREFIX, CLIENT_SECRET_PREFIX, digest, new_secret

KNOWN_GRANTS = (GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN)


def new_api(
    *,
    identifier: str,
    scopes: Iterable[str],
    now: int,
    name: str | None = None,
    descriptions: Mapping[str, str] | None = None,
    dynamic_clients: bool = False,
) -> Api:
    parts = urlsplit(identifier)
    if not parts.scheme or not (parts.netloc or parts.path) or parts.fragment:
        raise InvalidClientMetadata("an API identifier is an absolute URI without a fragment")
    if " " in identifier or len(identifier) > 2000:
        raise InvalidClientMetadata("an API identifier has no spaces and at most 2000 characters")
    names = tuple(dict.fromkeys(scope_rules.check_scope_token(s) for s in scopes))
    descriptions = dict(descriptions or {})
    unknown = set(descriptions) - set(names)
    if unknown:
        raise InvalidClientMetadata(f"descriptions for undefined scopes: {sorted(unknown)}")
    return Api(
        identifier=identifier,
        name=name or identifier,
        scopes=names,
        created_at=now,
        descriptions=descriptions,
        dynamic_clients=dynamic_clients,
    )


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    client_secret: str | None = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMetadata:
    """What an administrator registers a client with (RFC 7591 §2's metadata, tokensmith's
    subset): the one list of client options that the CLI, the admin service and
    :func:`new_client` share. ``apis`` are API identifiers, the first being the default
    audience (RFC 8707); iterables given for the tuple fields are frozen into tuples."""

    name: str
    client_type: ClientType
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    first_party: bool = False
    native: bool = False
    can_introspect: bool = False
    mfa_required: bool = False
    token_endpoint_auth_method: AuthMethod | None = None
    access_token_format: TokenFormat = "jwt"
    access_token_ttl: int | None = None
    refresh_token_idle_ttl: int | None = None
    refresh_token_absolute_ttl: int | None = None
    id_token_signed_response_alg: str = "RS256"
    post_logout_redirect_uris: tuple[str, ...] = ()
    jwks: str | None = None

    def __post_init__(self) -> None:
        for name in ("redirect_uris", "grant_types", "scopes", "apis", "post_logout_redirect_uris"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))


def new_client(
    metadata: ClientMetadata,
    *,
    apis: Sequence[Api] = (),
    now: int,
    pepper: bytes,
    origin: ClientOrigin = "static",
) -> NewClient:
    """Validate ``metadata`` and build the client with a fresh id (and secret, when it
    authenticates with one). ``apis``: the registered APIs that ``metadata.apis`` names.

    ``origin`` other than ``static`` makes a dynamic client: it has no APIs of its own (it may
    use those open to dynamic clients, ``Client.may_use``) and is never first party."""
    m = metadata
    if origin != "static" and (m.apis or apis or m.first_party):
        raise InvalidClientMetadata(
            "a dynamic client has no APIs of its own and is not first party"
        )
    native = m.native
    name = m.name.strip()
    if not name or len(name) > 200:
        raise InvalidClientMetadata("a client needs a name of 1 to 200 characters")
    if m.client_type not in ("confidential", "public"):
        raise InvalidClientMetadata("a client's type is confidential or public")
    if m.access_token_format not in ("jwt", "opaque"):
        raise InvalidClientMetadata("access_token_format must be jwt or opaque")
    grants = tuple(dict.fromkeys(m.grant_types)) or (GRANT_AUTHORIZATION_CODE,)
    for grant in grants:
        if grant in REFUSED_GRANTS:
            raise InvalidClientMetadata(REFUSED_GRANTS[grant])
        if grant not in KNOWN_GRANTS:
            raise InvalidClientMetadata(f"unknown grant type {grant!r}")
    uris = tuple(dict.fromkeys(check_registrable(u, native=native) for u in m.redirect_uris))
    if GRANT_AUTHORIZATION_CODE in grants and not uris:
        raise InvalidClientMetadata("the authorization code grant needs a redirect URI")
    if native and m.client_type != "public":
        raise InvalidClientMetadata("native apps are public clients")
    if m.client_type == "public":
        if GRANT_CLIENT_CREDENTIALS in grants:
            raise InvalidClientMetadata("public clients cannot use client credentials")
        method: AuthMethod = "none"
        if m.token_endpoint_auth_method not in (None, "none"):
            raise InvalidClientMetadata("public clients authenticate with 'none'")
    else:
        method = m.token_endpoint_auth_method or "client_secret_basic"
        if method == "none":
            raise InvalidClientMetadata("confidential clients must authenticate")
    jwks = m.jwks
    if method == "private_key_jwt":
        jwks = check_client_jwks(jwks)
    elif jwks is not None:
        raise InvalidClientMetadata("jwks is only for private_key_jwt clients")
    for ttl in (m.access_token_ttl, m.refresh_token_idle_ttl, m.refresh_token_absolute_ttl):
        if ttl is not None and not 30 <= ttl <= 10 * 365 * 86400:
            raise InvalidClientMetadata("token lifetimes are between 30 seconds and 10 years")
    if m.id_token_signed_response_alg not in ("RS256", "ES256", "EdDSA"):
        raise InvalidClientMetadata("id_token_signed_response_alg must be RS256, ES256 or EdDSA")
    allowed = tuple(dict.fromkeys(scope_rules.check_scope_token(s) for s in m.scopes))
    audiences = tuple(dict.fromkeys(api.identifier for api in apis))
    if GRANT_CLIENT_CREDENTIALS in grants and not audiences:
        raise InvalidClientMetadata(
            "a client_credentials client needs an API to get tokens for: register the API "
            "first (tokensmith apis create) and give the client its identifier (--api)"
        )
    defined = {s for api in apis for s in api.scopes}
    undefined = [s for s in allowed if s not in OIDC_SCOPES and s not in defined]
    if undefined and origin == "static":  # a dynamic client's scopes meet an API at request time
        where = ", ".join(audiences) if audiences else "no API (this client has none)"
        raise InvalidClientMetadata(f"scopes not defined by {where}: {' '.join(undefined)}")
    secret = (
        new_secret(CLIENT_SECRET_PREFIX)
        if method
        in (
            "client_secret_basic",
            "client_secret_post",
        )
        else None
    )
    client = Client(
        client_id=new_secret(CLIENT_ID_PREFIX, nbytes=12),
        name=name,
        client_type=m.client_type,
        redirect_uris=uris,
        grant_types=grants,
        scopes=allowed,
        apis=audiences,
        token_endpoint_auth_method=method,
        first_party=m.first_party,
        native=native,
        can_introspect=m.can_introspect,
        mfa_required=m.mfa_required,
        access_token_format=m.access_token_format,
        access_token_ttl=m.access_token_ttl,
        refresh_token_idle_ttl=m.refresh_token_idle_ttl,
        refresh_token_absolute_ttl=m.refresh_token_absolute_ttl,
        id_token_signed_response_alg=m.id_token_signed_response_alg,
        jwks=jwks,
        post_logout_redirect_uris=tuple(
            check_registrable(u, native=native) for u in m.post_logout_redirect_uris
        ),
        secret_digest=digest(secret, pepper) if secret else None,
        created_at=now,
        origin=origin,
    )
    return NewClient(client, secret)


def metadata_of(client: Client) -> ClientMetadata:
    """The metadata that registers ``client`` as it is now (the start of an update)."""
    return ClientMetadata(
        name=client.name,
        client_type=client.client_type,
        redirect_uris=client.redirect_uris,
        grant_types=client.grant_types,
        scopes=client.scopes,
        apis=client.apis,
        first_party=client.first_party,
        native=client.native,
        can_introspect=client.can_introspect,
        mfa_required=client.mfa_required,
        token_endpoint_auth_method=client.token_endpoint_auth_method,
        access_token_format=client.access_token_format,
        access_token_ttl=client.access_token_ttl,
        refresh_token_idle_ttl=client.refresh_token_idle_ttl,
        refresh_token_absolute_ttl=client.refresh_token_absolute_ttl,
        id_token_signed_response_alg=client.id_token_signed_response_alg,
        post_logout_redirect_uris=client.post_logout_redirect_uris,
        jwks=client.jwks,
    )


def updated_client(client: Client, metadata: ClientMetadata, *, apis: Sequence[Api]) -> Client:
    """``client`` changed to ``metadata``, validated exactly as a new registration; its id,
    secret and creation time stay. Its type and authentication method cannot change (that is a
    new client, with new credentials)."""
    current = client.token_endpoint_auth_method
    wanted = metadata.token_endpoint_auth_method or current
    if metadata.client_type != client.client_type or wanted != current:
        raise InvalidClientMetadata(
            "a client's type and authentication method cannot change: register a new client"
        )
    if metadata.native != client.native:
        raise InvalidClientMetadata(
            "whether a client is a native app cannot change: register a new client"
        )
    checked = new_client(
        metadata, apis=apis, now=client.created_at, pepper=b"unused", origin=client.origin
    ).client
    return replace(
        checked,
        client_id=client.client_id,
        secret_digest=client.secret_digest,
        created_at=client.created_at,
        jwks_uri=client.jwks_uri,
        registration_token_digest=client.registration_token_digest,
        last_used_at=client.last_used_at,
    )


def check_client_jwks(jwks: str | None) -> str:
    """A client's public JWKS for ``private_key_jwt``: JSON, asymmetric public keys only."""
    if not jwks:
        raise InvalidClientMetadata("private_key_jwt clients need a JWKS (their public keys)")
    try:
        data = json.loads(jwks)
        keys = data["keys"]
        if not isinstance(keys, list) or not keys:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InvalidClientMetadata('the JWKS must be JSON like {"keys": [...]}') from None
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA", "OKP"):
            raise InvalidClientMetadata("JWKS keys must be EC, RSA or OKP public keys")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise InvalidClientMetadata("the JWKS holds private key material: register public keys")
    try:
        jwt.PyJWKSet.from_dict(data)
    except jwt.PyJWTError as exc:
        raise InvalidClientMetadata(f"the JWKS cannot be used: {exc}") from None
    return json.dumps({"keys": keys}, separators=(",", ":"))


def new_client_secret(pepper: bytes) -> tuple[str, str]:
    """A fresh secret and its digest (for ``clients rotate-secret``)."""
    secret = new_secret(CLIENT_SECRET_PREFIX)
    return secret, digest(secret, pepper)


def new_user(
    *,
    username: str,
    password_hash: str | None,
    now: int,
    email: str | None = None,
    email_verified: bool = False,
    name: str | None = None,
) -> User:
    login = normalize_login(username)
    if "@" in login:
        raise ValueError("a username must not contain '@' (that is how emails are told apart)")
    check_single_script(login)
    mail = normalize_email(email) if email else None
    return User(
        id=str(uuid.uuid4()),
        username=login,
        email=mail,
        email_verified=email_verified,
        name=name.strip() if name else None,
        disabled=False,
        password_hash=password_hash,
        created_at=now,
        updated_at=now,
    )


__all__ = [
    "ClientMetadata",
    "NewClient",
    "check_password_policy",
    "new_api",
    "new_client",
    "new_client_secret",
    "new_user",
]
