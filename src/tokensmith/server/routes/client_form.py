"""The first steps shared by the token, revocation and introspection endpoints: the form body
(strictly parsed, once), the single ``Authorization`` header, and the request's rate limits
(``server.ratelimit``): an address past its limit of failed client authentications is refused
here, before any credential is looked at; the per-client limit is counted by the core once the
client has authenticated (``ClientForm.limit``). The body is read whole
(under ``max_form_bytes`` and ``form_read_timeout``) before the endpoint opens its transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from tokensmith.server.http import read_form, single_header
from tokensmith.server.ratelimit import RequestLimits
from tokensmith.server.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ClientForm:
    params: dict[str, str]
    authorization: str | None = field(repr=False)
    limit: RequestLimits


async def read_client_form(
    request: Request, rt: Runtime, *, endpoint: str, max_value_length: int
) -> ClientForm:
    """``endpoint``: the endpoint's own path (its setting), which names its rate limit. Not the
    path the request spelled: the router also routes other spellings to the endpoint
    (``/token%0A``: a route's pattern ends in ``$``), which must not get budgets of their own."""
    params = await read_form(
        request,
        limit=rt.settings.max_form_bytes,
        max_value_length=max_value_length,
        time_limit=rt.settings.form_read_timeout,
    )
    authorization = single_header(request, "authorization")
    # The peer, or the client named by a trusted proxy (forwarded_allow_ips, set by uvicorn).
    address = request.client.host if request.client else "unknown"
    limit = rt.rate_limiter.for_request(endpoint, address)
    await limit.check_address()
    return ClientForm(params, authorization, limit)
