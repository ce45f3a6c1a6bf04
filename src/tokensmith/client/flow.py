"""The back-channel half of a login: discovery, code exchange, identity. No web framework.

* Discovery (OpenID Connect Discovery 1.0 §4, RFC 8414 §3.3): the document's ``issuer`` must equal
  the configured issuer exactly, or the flow does not start (mix-up, RFC 9700 §4.4).
* Authorization request: ``response_type=code`` only (RFC 9700 §2.1.2), S256 PKCE always,
  ``nonce`` for OpenID Connect.
* Authorization response ``iss`` (RFC 9207 §2.4): when present it must equal the issuer of the
  provider this transaction started with; when the provider advertises
  ``authorization_response_iss_parameter_supported`` it must be present.
* Token request (RFC 6749 §4.1.3, RFC 7636 §4.5): the code with the verifier, client
  authenticated with its secret; a provider that is down or answers nonsense becomes
  :class:`ProviderUnavailable` (a 502 page), never a 500.
* Every call to the provider (discovery, token, UserInfo, GitHub's API) has one deadline for the
  whole exchange, body included (``provider.timeout``), and reads at most 1 MiB: a provider that
  drips its answer or sends a huge one costs at most that time and memory
  (:func:`tokensmith.resource._http.fetch`).
* GitHub identity: ``GET /user`` (numeric id) and ``GET /user/emails`` (only a *verified primary*
  address counts as the user's e-mail).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import orjson

from tokensmith.client.errors import (
    InvalidIdToken,
    IssuerMismatch,
    LoginCancelled,
    ProviderError,
    ProviderUnavailable,
)
from tokensmith.client.models import ExternalIdentity, UpstreamTokens
from tokensmith.client.transaction import LoginTransaction
from tokensmith.resource._http import BoundedResponse, OutboundError, fetch

if TYPE_CHECKING:  # the providers call these functions; only their types are needed here
    from tokensmith.client.providers import GitHubProvider, OIDCProvider, Provider

__all__ = [
    "ProviderMetadata",
    "authorization_url",
    "check_authorization_response",
    "exchange_code",
    "fetch_github_identity",
    "fetch_metadata",
    "fetch_userinfo",
    "github_metadata",
    "identity_from_claims",
    "refresh_tokens",
    "tokens_from_response",
]

_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    iss_parameter_supported: bool = False
    id_token_algs_advertised: Any = None
    token_auth_method: str = "client_secret_basic"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def github_metadata(provider: GitHubProvider) -> ProviderMetadata:
    """GitHub publishes no metadata; its endpoints are fixed below ``base_url``."""
    return ProviderMetadata(
        issuer=provider.issuer,
        authorization_endpoint=provider.authorization_endpoint,
        token_endpoint=provider.token_endpoint,
        token_auth_method="client_secret_post",
    )


async def fetch_metadata(http: httpx.AsyncClient, provider: OIDCProvider) -> ProviderMetadata:
    """Discovery with the issuer pinned; raises :class:`ProviderUnavailable` when unusable."""
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    doc = await _get_json(http, url, limit=provider.timeout)
    if not isinstance(doc, dict):
        raise ProviderUnavailable("discovery document is not a JSON object")
    if doc.get("issuer") != provider.issuer:
        raise ProviderUnavailable(
            f"discovery issuer {doc.get('issuer')!r} != configured {provider.issuer!r}"
        )
    endpoints: dict[str, str | None] = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        if not isinstance(value, str) or not _is_acceptable_url(value):
            raise ProviderUnavailable(f"discovery {name} missing or not https: {value!r}")
        endpoints[name] = value
    for name in ("userinfo_endpoint", "end_session_endpoint"):
        value = doc.get(name)
        endpoints[name] = value if isinstance(value, str) and _is_acceptable_url(value) else None
    methods = doc.get("token_endpoint_auth_methods_supported")
    if isinstance(methods, list) and methods and "client_secret_basic" not in methods:
        auth = "client_secret_post" if "client_secret_post" in methods else "client_secret_basic"
    else:
        auth = "client_secret_basic"
    return ProviderMetadata(
        issuer=provider.issuer,
        authorization_endpoint=str(endpoints["authorization_endpoint"]),
        token_endpoint=str(endpoints["token_endpoint"]),
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=endpoints["userinfo_endpoint"],
        end_session_endpoint=endpoints["end_session_endpoint"],
        iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
        id_token_algs_advertised=doc.get("id_token_signing_alg_values_supported"),
        token_auth_method=auth,
        raw=doc,
    )


def authorization_url(
    provider: Provider, metadata: ProviderMetadata, tx: LoginTransaction, *, redirect_uri: str
) -> str:
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", provider.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", " ".join(provider.scopes)),
        ("state", tx.state),
        ("code_challenge", tx.code_challenge),
        ("code_challenge_method", "S256"),
    ]
    if tx.nonce is not None:
        params.append(("nonce", tx.nonce))
    reserved = {k for k, _ in params}
    params.extend((k, v) for k, v in provider.extra_authorize_params if k not in reserved)
    endpoint = metadata.authorization_endpoint
    sep = "&" if urlsplit(endpoint).query else "?"
    return endpoint + sep + urlencode(params)


def check_authorization_response(params: dict[str, str], *, metadata: ProviderMetadata) -> str:
    """The authorization ``code`` of a callback whose ``state`` already checked out.

    Raises :class:`IssuerMismatch` (RFC 9207), :class:`LoginCancelled` for ``access_denied``,
    :class:`ProviderError` for other errors or a missing code.
    """
    iss = params.get("iss")
    if iss is not None and iss != metadata.issuer:
        raise IssuerMismatch(f"authorization response iss {iss!r} != {metadata.issuer!r}")
    if iss is None and metadata.iss_parameter_supported:
        raise IssuerMismatch("provider advertises iss in authorization responses; none sent")
    error = params.get("error")
    if error is not None:
        if error == "access_denied":
            raise LoginCancelled(
                f"provider error access_denied: {params.get('error_description')!r}"
            )
        raise ProviderError(f"provider error {error!r}: {params.get('error_description')!r}")
    code = params.get("code")
    if not code or len(code) > 2048:
        raise ProviderError("callback without an authorization code")
    return code


async def exchange_code(
    http: httpx.AsyncClient,
    provider: Provider,
    metadata: ProviderMetadata,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
) -> dict[str, Any]:
    """RFC 6749 §4.1.3 + RFC 7636 §4.5: the token response (a JSON object with an access token)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    return await _token_request(http, provider, metadata, form)


async def refresh_tokens(
    http: httpx.AsyncClient, provider: Provider, metadata: ProviderMetadata, refresh_token: str
) -> dict[str, Any]:
    """RFC 6749 §6. Raises :class:`ProviderError` when the provider refuses."""
    return await _token_request(
        http, provider, metadata, {"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def _token_request(
    http: httpx.AsyncClient, provider: Provider, metadata: ProviderMetadata, form: dict[str, str]
) -> dict[str, Any]:
    auth: httpx.BasicAuth | None = None
    if metadata.token_auth_method == "client_secret_basic":
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        auth = httpx.BasicAuth(quote_plus(provider.client_id), quote_plus(provider.client_secret))
    else:
        form = {**form, "client_id": provider.client_id, "client_secret": provider.client_secret}
    try:
        response = await fetch(
            http,
            "POST",
            metadata.token_endpoint,
            deadline=provider.timeout,
            max_bytes=_MAX_BODY,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
        )
    except OutboundError as exc:
        raise ProviderUnavailable(f"token endpoint: {exc.detail}") from exc
    body = _json_body(response)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        # GitHub answers errors such as bad_verification_code with HTTP 200.
        raise ProviderError(
            f"token endpoint error {body['error']!r} (HTTP {response.status_code}): "
            f"{body.get('error_description')!r}",
            error=body["error"],
        )
    if response.status_code >= 500:
        raise ProviderUnavailable(f"token endpoint HTTP {response.status_code}")
    if response.status_code != 200 or not isinstance(body, dict):
        raise ProviderError(f"token endpoint HTTP {response.status_code} without a token")
    token_type = body.get("token_type")
    if not isinstance(body.get("access_token"), str) or not isinstance(token_type, str):
        raise ProviderError("token response without access_token / token_type")
    if token_type.lower() != "bearer":
        raise ProviderError(f"unsupported token_type {token_type!r}")
    return body


def tokens_from_response(body: dict[str, Any], *, now: float) -> UpstreamTokens:
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        expires_at = now + float(expires_in)
    refresh = body.get("refresh_token")
    scope = body.get("scope")
    return UpstreamTokens(
        access_token=str(body["access_token"]),
        token_type="Bearer",
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        scope=scope if isinstance(scope, str) else None,
    )


async def fetch_github_identity(
    http: httpx.AsyncClient, provider: GitHubProvider, *, name: str, access_token: str
) -> ExternalIdentity:
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    user = await _get_json(
        http, f"{provider.api_url}/user", limit=provider.timeout, headers=headers
    )
    if not isinstance(user, dict):
        raise ProviderUnavailable("GET /user did not return an object")
    user_id = user.get("id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ProviderUnavailable("GET /user without a numeric id")
    emails = await _get_json(
        http, f"{provider.api_url}/user/emails", limit=provider.timeout, headers=headers
    )
    verified: str | None = None
    shown: str | None = None
    if isinstance(emails, list):
        for entry in emails:
            if not isinstance(entry, dict) or entry.get("primary") is not True:
                continue
            address = entry.get("email")
            if isinstance(address, str):
                shown = address
                if entry.get("verified") is True:
                    verified = address
    login = user.get("login")
    display = user.get("name") if isinstance(user.get("name"), str) else login
    return ExternalIdentity(
        provider=name,
        issuer=provider.issuer,
        subject=str(user_id),
        email=verified,
        email_verified=verified is not None,
        name=display if isinstance(display, str) else None,
        unverified_email=None if verified else shown,
        raw_claims={"user": user, "emails": emails if isinstance(emails, list) else []},
    )


async def fetch_userinfo(
    http: httpx.AsyncClient, provider: OIDCProvider, metadata: ProviderMetadata, access_token: str
) -> dict[str, Any]:
    if metadata.userinfo_endpoint is None:
        return {}
    doc = await _get_json(
        http,
        metadata.userinfo_endpoint,
        limit=provider.timeout,
        headers={"Authorization": f"Bearer {access_token}"},
    )
    return doc if isinstance(doc, dict) else {}


def identity_from_claims(
    claims: dict[str, Any], *, name: str, issuer: str, userinfo: dict[str, Any] | None = None
) -> ExternalIdentity:
    """An OIDC identity; UserInfo claims count only when their ``sub`` is the ID token's
    (OpenID Connect Core §5.3.2)."""
    merged = dict(claims)
    if userinfo:
        if userinfo.get("sub") != claims["sub"]:
            raise InvalidIdToken("UserInfo sub differs from the ID token sub")
        merged = {**userinfo, **claims}
    email = merged.get("email")
    email = email if isinstance(email, str) and email else None
    verified = merged.get("email_verified") is True and email is not None
    display = merged.get("name")
    return ExternalIdentity(
        provider=name,
        issuer=issuer,
        subject=str(claims["sub"]),
        email=email if verified else None,
        email_verified=verified,
        name=display if isinstance(display, str) else None,
        unverified_email=None if verified else email,
        raw_claims=merged,
    )


async def _get_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    limit: float,
    headers: dict[str, str] | None = None,
) -> Any:
    """GET a JSON document; ``limit`` is the deadline of the whole call, in seconds."""
    try:
        response = await fetch(
            http,
            "GET",
            url,
            deadline=limit,
            max_bytes=_MAX_BODY,
            headers={"Accept": "application/json", **(headers or {})},
        )
    except OutboundError as exc:
        raise ProviderUnavailable(exc.detail) from exc
    if response.status_code != 200:
        raise ProviderUnavailable(f"GET {url}: HTTP {response.status_code}")
    body = _json_body(response)
    if body is None:
        raise ProviderUnavailable(f"GET {url}: not JSON")
    return body


def _json_body(response: BoundedResponse) -> Any:
    """The JSON value of a body already read within the size cap; None when it is not JSON
    (orjson also refuses invalid UTF-8 and nesting deeper than 1024)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _is_acceptable_url(url: str) -> bool:
    """https, or http to a loopback address (local development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
