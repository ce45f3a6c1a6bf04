"""FastAPI integration: bearer-token dependencies with RFC 6750 errors.

``ResourceServer(validator, ...)`` declares an OAuth 2.0 authorization-code security scheme (so
Swagger UI's "Authorize" button runs the code flow with PKCE) and hands out dependencies:

    rs = ResourceServer(validator, authorization_url=..., token_url=..., scopes={...})
    ReadPrincipal = Annotated[Principal, rs.require_scopes("docs:read")]

Errors (RFC 6750 §3): no bearer token -> 401 ``WWW-Authenticate: Bearer realm="..."`` without an
error code; an invalid token -> 401 ``error="invalid_token"``; a missing scope -> 403
``error="insufficient_scope", scope="..."``. Tokens are read from the ``Authorization`` header
only; ``?access_token=`` is ignored (OAuth 2.1 §5.1, BCP-33). Tokens are never logged, only a
12-hex-digit SHA-256 prefix.

No ``from __future__ import annotations`` here: FastAPI must see the real ``Annotated`` objects of
the dependency built in :meth:`ResourceServer._make_dependency` (they close over local values).
"""

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import OAuth2AuthorizationCodeBearer, SecurityScopes

from ._util import token_fingerprint
from .errors import InsufficientScopeError, InvalidRequestError, InvalidTokenError, ResourceError
from .principal import Principal
from .validator import Validator

__all__ = ["ResourceServer", "bearer_token"]

logger = logging.getLogger("tokensmith.resource")

# RFC 6750 §2.1 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_token(request: Request) -> str | None:
    """The bearer token of the ``Authorization`` header; None when there is none.

    The scheme is case-insensitive (RFC 7235 §2.1). Raises :class:`InvalidRequestError` for two
    ``Authorization`` headers and :class:`InvalidTokenError` for a malformed token.
    """
    values = request.headers.getlist("authorization")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequestError("more than one Authorization header")
    scheme, _, credentials = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip()
    if not _B64TOKEN.fullmatch(token):
        raise InvalidTokenError("malformed bearer token")
    return token


class ResourceServer:
    """Bearer-token protection for FastAPI routes, backed by a :class:`Validator`.

    ``authorization_url``/``token_url`` are the authorization server's endpoints, shown to Swagger
    UI; ``scopes`` maps each scope to a description for the OpenAPI document.
    """

    def __init__(
        self,
        validator: Validator,
        *,
        realm: str = "api",
        authorization_url: str = "/authorize",
        token_url: str = "/token",
        refresh_url: str | None = None,
        scopes: dict[str, str] | None = None,
        scheme_name: str = "OAuth2",
        description: str | None = "OAuth 2.0 authorization code flow with PKCE (S256).",
    ) -> None:
        self.validator = validator
        self.realm = realm
        self.scheme = OAuth2AuthorizationCodeBearer(
            authorizationUrl=authorization_url,
            tokenUrl=token_url,
            refreshUrl=refresh_url,
            scheme_name=scheme_name,
            scopes=scopes or {},
            description=description,
            auto_error=False,
        )
        self._principal_dependency = self._make_dependency()

    def challenge(self, error: ResourceError | None = None) -> str:
        """The ``WWW-Authenticate`` value for ``error`` (None: no token was presented)."""
        parts = [f"realm={_quote(self.realm)}"]
        if error is not None and error.status_code != 503:
            parts.append(f"error={_quote(error.error)}")
            if isinstance(error, InsufficientScopeError):
                parts.append(f"scope={_quote(' '.join(sorted(error.required)))}")
        return "Bearer " + ", ".join(parts)

    def http_error(self, error: ResourceError | None) -> HTTPException:
        """The HTTPException FastAPI renders for ``error`` (None: no token)."""
        status = 401 if error is None else error.status_code
        headers = {"WWW-Authenticate": self.challenge(error), "Cache-Control": "no-store"}
        if status == 503:
            headers["Retry-After"] = "5"
        detail = "missing_token" if error is None else error.error
        return HTTPException(status_code=status, detail=detail, headers=headers)

    async def authenticate(self, request: Request, required: Iterable[str] = ()) -> Principal:
        """Validate the request's bearer token and check ``required`` scopes; raise HTTP errors."""
        try:
            token = bearer_token(request)
        except ResourceError as exc:
            logger.info("bearer token refused: %s", exc.detail)
            raise self.http_error(exc) from None
        if token is None:
            raise self.http_error(None)
        try:
            principal = await self.validator.validate(token)
        except ResourceError as exc:
            log = logger.warning if exc.status_code >= 500 else logger.info
            log("token %s refused: %s", token_fingerprint(token), exc.detail)
            raise self.http_error(exc) from None
        except Exception:
            # a validator bug must not turn into a 500 carrying details, nor accept the token
            logger.exception("token %s: validator failed", token_fingerprint(token))
            raise self.http_error(InvalidTokenError("validator failed")) from None
        needed = frozenset(required)
        if not principal.scopes.issuperset(needed):
            error = InsufficientScopeError(
                f"missing scopes {sorted(needed - principal.scopes)}", required=needed
            )
            logger.info("token %s: %s", token_fingerprint(token), error.detail)
            raise self.http_error(error)
        return principal

    def _make_dependency(self) -> Callable[..., Awaitable[Principal]]:
        scheme = self.scheme

        async def principal(
            request: Request,
            security_scopes: SecurityScopes,
            _declared: Annotated[str | None, Depends(scheme)],
        ) -> Principal:
            return await self.authenticate(request, security_scopes.scopes)

        return principal

    def require_scopes(self, *scopes: str) -> Any:
        """A ``Security`` dependency yielding the :class:`Principal` when it has all ``scopes``.

        Use it as ``Annotated[Principal, rs.require_scopes("docs:read")]`` or in
        ``dependencies=[...]``; OpenAPI lists the scopes on the operation.
        """
        return Security(self._principal_dependency, scopes=list(scopes))

    @property
    def authenticated(self) -> Any:
        """A dependency yielding the :class:`Principal` of any valid token (no scope needed)."""
        return Security(self._principal_dependency, scopes=[])
