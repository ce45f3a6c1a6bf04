"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), no I/O but
the stores.

Policy (``ServerPolicy.registration``): ``off`` (no endpoint), ``token`` (every registration
spends one use of an operator's initial access token, RFC 7591 §3) or ``open``. The metadata is
validated by the very rules of ``tokensmith clients create`` (``registration.new_client``), plus:

- ``response_types`` is ``["code"]`` (or absent); ``grant_types`` are ``authorization_code`` and
  ``refresh_token``: a registered client has no API of its own, so ``client_credentials`` (which
  needs one) is refused, as are the implicit and password grants;
- ``application_type`` is ``web`` (default) or ``native`` (a public client with loopback or
  private-use redirect URIs); ``token_endpoint_auth_method`` defaults to ``client_secret_basic``
  for web clients (RFC 7591 §2) and ``none`` for native ones; ``private_key_jwt`` needs ``jwks``
  (``jwks_uri`` is refused: nothing is fetched at registration);
- unknown metadata is ignored (§2) and not echoed.

A registered client is *dynamic* (``Client.origin == "registered"``): never first party, tokens
only for APIs open to dynamic clients, named by ``resource``. Its ``registration_access_token``
(RFC 7592) is stored as an HMAC digest and replaced on every update (the old one stops working).
Wrong, missing or foreign tokens at the management URI are all ``invalid_token`` (401), whether
or not the client exists (RFC 7592 §3)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from typing import cast
from urllib.parse import urlsplit

from tokensmith.core import audit
from tokensmith.core.audit import AuditEvent
from tokensmith.core.client_narrowing import withdraw_narrowed
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import InvalidClientMetadata, InvalidToken
from tokensmith.core.models import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    AuthMethod,
    Client,
    InitialAccessToken,
)
from tokensmith.core.ports import Stores
from tokensmith.core.registration import ClientMetadata, metadata_of, new_client, updated_client
from tokensmith.core.secrets import digest, equals, new_secret

REGISTRATION_TOKEN_PREFIX = "ts_rat_"
INITIAL_ACCESS_TOKEN_PREFIX = "ts_iat_"
AUTH_METHODS: tuple[AuthMethod, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)
LAST_USE_RESOLUTION = 86400
"""``last_used_at`` is written at most once per this many seconds per client."""

_BEARER_REALM = 'Bearer realm="registration"'


def _invalid_token(description: str) -> InvalidToken:
    return InvalidToken(
        description,
        headers={"WWW-Authenticate": f'{_BEARER_REALM}, error="invalid_token"'},
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def new_initial_access_token(
    *, pepper: bytes, now: int, expires_in: int | None, uses: int | None, note: str = ""
) -> tuple[str, InitialAccessToken]:
    """A fresh initial access token (shown once) and its stored form (digest)."""
    if expires_in is not None and expires_in < 60:
        raise ValueError("an initial access token lives at least 60 seconds")
    if uses is not None and uses < 1:
        raise ValueError("an initial access token allows at least one registration")
    if len(note) > 200:
        raise ValueError("a note has at most 200 characters")
    token = new_secret(INITIAL_ACCESS_TOKEN_PREFIX)
    return token, InitialAccessToken(
        digest=digest(token, pepper),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
        uses_left=uses,
        note=note,
    )


def _strings(body: Mapping[str, object], name: str) -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} is an array of strings")
    if len(value) > 20:
        raise InvalidClientMetadata(f"{name} has at most 20 entries")
    return tuple(cast(list[str], value))


def _string(body: Mapping[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidClientMetadata(f"{name} is a string")
    return value


def metadata_from_request(body: object) -> ClientMetadata:
    """The client metadata of a registration or update request (RFC 7591 §2), in tokensmith's
    terms; ``new_client`` then validates it as it validates ``clients create``."""
    if not isinstance(body, dict):
        raise InvalidClientMetadata("the request body is a JSON object of client metadata")
    application_type = _string(body, "application_type") or "web"
    if application_type not in ("web", "native"):
        raise InvalidClientMetadata("application_type is web or native")
    native = application_type == "native"
    response_types = _strings(body, "response_types") or ("code",)
    if set(response_types) != {"code"}:
        raise InvalidClientMetadata("response_types supported: code")
    grants = _strings(body, "grant_types") or (GRANT_AUTHORIZATION_CODE,)
    if GRANT_CLIENT_CREDENTIALS in grants:
        raise InvalidClientMetadata(
            "client_credentials is not available to dynamically registered clients: ask the "
            "operator for a client"
        )
    method = _string(body, "token_endpoint_auth_method") or (
        "none" if native else "client_secret_basic"
    )
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(f"token_endpoint_auth_method is one of {list(AUTH_METHODS)}")
    if body.get("jwks_uri") is not None:
        raise InvalidClientMetadata("jwks_uri is not supported: register the keys as jwks")
    jwks = body.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise InvalidClientMetadata("jwks is a JSON Web Key Set object")
    redirect_uris = _strings(body, "redirect_uris")
    name = _string(body, "client_name")
    if name is None:  # named after where it sends users, never after a claim
        host = urlsplit(redirect_uris[0]).hostname if redirect_uris else None
        name = host or "unnamed client"
    scope = _string(body, "scope") or ""
    return ClientMetadata(
        name=name,
        client_type="public" if method == "none" else "confidential",
        redirect_uris=redirect_uris,
        grant_types=grants,
        scopes=tuple(scope.split()),
        native=native,
        token_endpoint_auth_method=method,
        id_token_signed_response_alg=_string(body, "id_token_signed_response_alg") or "RS256",
        post_logout_redirect_uris=_strings(body, "post_logout_redirect_uris"),
        jwks=json.dumps(jwks) if jwks is not None else None,
    )


def client_information(
    client: Client,
    *,
    registration_client_uri: str,
    registration_access_token: str,
    client_secret: str | None = None,
) -> dict[str, object]:
    """The client information response (RFC 7591 §3.2.1, RFC 7592 §3)."""
    out: dict[str, object] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "application_type": "native" if client.native else "web",
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "registration_access_token": registration_access_token,
        "registration_client_uri": registration_client_uri,
    }
    if client_secret is not None:
        out["client_secret"] = client_secret
        out["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: 0, it does not expire
    if client.scopes:
        out["scope"] = " ".join(client.scopes)
    if client.post_logout_redirect_uris:
        out["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    if client.jwks:
        out["jwks"] = json.loads(client.jwks)
    return out


@dataclass(frozen=True, slots=True)
class Registration:
    """An answer of the registration endpoint: the JSON body and its status."""

    body: dict[str, object]
    status: int = 200


class Registrar:
    def __init__(self, context: ServerContext, *, registration_uri: str) -> None:
        self.context = context
        self.registration_uri = registration_uri

    def client_uri(self, client_id: str) -> str:
        return f"{self.registration_uri}/{client_id}"

    def _event(self, name: str, client_id: str | None, address: str | None, **detail: str) -> None:
        self.context.emit(
            AuditEvent(
                name, self.context.now(), client_id=client_id, address=address, detail=detail
            )
        )

    async def register(
        self, body: object, authorization: str | None, stores: Stores, *, address: str
    ) -> Registration:
        """RFC 7591 §3: check the initial access token (mode ``token``), validate, create."""
        ctx = self.context
        mode = ctx.policy.registration
        if mode == "off":  # the route is not mounted then; a facade caller gets the same answer
            raise InvalidClientMetadata("dynamic client registration is off")
        now = ctx.now()
        if mode == "token":
            token = bearer_token(authorization)
            if token is None or not await stores.initial_access_tokens.use(
                digest(token, ctx.pepper), now
            ):
                self._event(audit.CLIENT_REGISTRATION_REFUSED, None, address)
                raise _invalid_token("an initial access token from the operator is required")
        # the use spent above is rolled back with the transaction if the metadata is refused
        metadata = metadata_from_request(body)
        made = new_client(metadata, now=now, pepper=ctx.pepper, origin="registered")
        registration_token = new_secret(REGISTRATION_TOKEN_PREFIX)
        client = made.client
        client = replace(client, registration_token_digest=digest(registration_token, ctx.pepper))
        await stores.clients.create(client)
        self._event(audit.CLIENT_REGISTERED, client.client_id, address, mode=mode)
        return Registration(
            client_information(
                client,
                registration_client_uri=self.client_uri(client.client_id),
                registration_access_token=registration_token,
                client_secret=made.client_secret,
            ),
            status=201,
        )

    async def _authorized(
        self, client_id: str, authorization: str | None, stores: Stores
    ) -> Client:
        token = bearer_token(authorization)
        if token is None:
            raise _invalid_token("the registration access token is required")
        client = await stores.clients.get(client_id)  # not the cache: the digest must be current
        if (
            client is None
            or client.origin != "registered"
            or client.registration_token_digest is None
            or not equals(client.registration_token_digest, digest(token, self.context.pepper))
        ):
            raise _invalid_token("the registration access token is not valid for this client")
        return client

    async def read(self, client_id: str, authorization: str | None, stores: Stores) -> Registration:
        """RFC 7592 §2.1. The token is unchanged (so it is sent back as it came)."""
        client = await self._authorized(client_id, authorization, stores)
        token = bearer_token(authorization)
        assert token is not None
        return Registration(
            client_information(
                client,
                registration_client_uri=self.client_uri(client.client_id),
                registration_access_token=token,
            )
        )

    async def update(
        self,
        client_id: str,
        authorization: str | None,
        body: object,
        stores: Stores,
        *,
        address: str,
    ) -> Registration:
        """RFC 7592 §2.2: the metadata is replaced whole and validated as a registration; the
        registration access token is rotated. Scopes the client no longer declares take the
        grants, recorded access tokens and consents that hold them with them
        (``core.client_narrowing``), as an operator's ``clients update`` does; the audit event
        says how many were revoked. (A registered client has no API of its own to lose.)"""
        client = await self._authorized(client_id, authorization, stores)
        if not isinstance(body, dict) or body.get("client_id") != client.client_id:
            raise InvalidClientMetadata("the body's client_id must be the client's")
        secret = body.get("client_secret")
        if secret is not None and (
            client.secret_digest is None
            or not isinstance(secret, str)
            or not equals(client.secret_digest, digest(secret, self.context.pepper))
        ):
            raise InvalidClientMetadata("client_secret does not match the client's")
        wanted = metadata_from_request(body)
        if body.get("token_endpoint_auth_method") is None:
            current = metadata_of(client)
            wanted = ClientMetadata(
                **{
                    **{f: getattr(wanted, f) for f in wanted.__dataclass_fields__},
                    "client_type": current.client_type,
                    "token_endpoint_auth_method": current.token_endpoint_auth_method,
                }
            )
        changed = updated_client(client, wanted, apis=())
        now = self.context.now()
        token = new_secret(REGISTRATION_TOKEN_PREFIX)
        await stores.clients.update(changed, now)
        await stores.clients.set_registration_token(
            client.client_id, digest(token, self.context.pepper), now
        )
        taken = await withdraw_narrowed(stores, client, changed, now)
        self.context.client_cache.invalidate(client.client_id)
        revoked = (
            {"revoked_grants": str(taken.grants), "revoked_access_tokens": str(taken.access_tokens)}
            if taken.grants or taken.access_tokens
            else {}
        )
        self._event(audit.CLIENT_REGISTRATION_UPDATED, client.client_id, address, **revoked)
        return Registration(
            client_information(
                changed,
                registration_client_uri=self.client_uri(client.client_id),
                registration_access_token=token,
            )
        )

    async def delete(
        self, client_id: str, authorization: str | None, stores: Stores, *, address: str
    ) -> None:
        """RFC 7592 §2.3: the client goes; its tokens stop working with it."""
        client = await self._authorized(client_id, authorization, stores)
        await stores.clients.delete(client.client_id)
        self.context.client_cache.invalidate(client.client_id)
        self._event(audit.CLIENT_REGISTRATION_DELETED, client.client_id, address)


def note_use(client: Client, stores: Stores, now: int) -> Awaitable[object] | None:
    """Record that a registered client got a token, at most once a day (pruning's input): the
    store's write to await, or ``None`` when there is nothing to record (every client that is
    not a registered one, and one whose use was recorded within the day)."""
    if client.origin != "registered":
        return None
    if client.last_used_at is not None and client.last_used_at > now - LAST_USE_RESOLUTION:
        return None
    return stores.clients.touch(client.client_id, now, older_than=now - LAST_USE_RESOLUTION)
