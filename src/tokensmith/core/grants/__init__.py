"""One module per grant type, one contract (``GrantHandler``), an explicit registry.

A grant receives a typed ``TokenRequest`` that shows it only the parameters it declares
(``GrantHandler.parameters``), the authenticated client, the ``ServerContext`` and the
``TokenIssuer``; never the server. The token endpoint (``core.token``) ends in a lookup in a
``GrantRegistry``, so a new grant plugs in by being registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tokensmith.core.errors import InvalidRequest
from tokensmith.core.models import REFUSED_GRANTS

if TYPE_CHECKING:
    from tokensmith.core.context import ServerContext
    from tokensmith.core.issuance import TokenIssuer
    from tokensmith.core.models import Client, TokenResponse
    from tokensmith.core.ports import Stores


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request (RFC 6749 §4.1.3, §4.4.2, §6): its ``grant_type`` and its form
    parameters. The client's credentials travel in it (``params``, ``authorization``), so
    neither appears in ``repr``."""

    grant_type: str
    params: dict[str, str] = field(repr=False)
    authorization: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, params: dict[str, str], authorization: str | None) -> TokenRequest:
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        return cls(grant_type, params, authorization)

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def only(self, names: frozenset[str]) -> TokenRequest:
        """The same request showing only ``names`` (what a grant declared it reads) and no
        client credentials."""
        params = self.params
        return TokenRequest(self.grant_type, {n: params[n] for n in names if n in params})


class GrantHandler(Protocol):
    grant_type: str
    parameters: frozenset[str]
    """The request parameters the grant reads; it is shown no others."""
    audit_event: str
    """The audit event of a token issued by this grant (``core.audit``)."""

    async def handle(
        self,
        request: TokenRequest,
        client: Client,
        *,
        context: ServerContext,
        issuer: TokenIssuer,
        stores: Stores,
    ) -> TokenResponse: ...


class GrantRegistry:
    """The grant types the token endpoint serves, by name (RFC 6749 §4.5: new grants are
    extensions). A refused grant (``REFUSED_GRANTS``) cannot be registered."""

    def __init__(self, handlers: Iterable[GrantHandler] = ()) -> None:
        self._handlers: dict[str, GrantHandler] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: GrantHandler) -> None:
        name = handler.grant_type
        if name in REFUSED_GRANTS:
            raise ValueError(f"the {name} grant may not be registered (OAuth 2.1)")
        if name in self._handlers:
            raise ValueError(f"a handler for {name} is registered already")
        self._handlers[name] = handler

    def get(self, grant_type: str) -> GrantHandler | None:
        return self._handlers.get(grant_type)

    def __contains__(self, grant_type: object) -> bool:
        return grant_type in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)
