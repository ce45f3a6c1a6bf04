"""One module per grant type, one contract (``GrantHandler``), an explicit registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tokensmith.core.models import Client, TokenResponse
    from tokensmith.core.ports import Stores
    from tokensmith.core.server import AuthorizationServer


class GrantHandler(Protocol):
    grant_type: str

    async def handle(
        self,
        server: AuthorizationServer,
        client: Client,
        params: dict[str, str],
        stores: Stores,
    ) -> TokenResponse: ...
