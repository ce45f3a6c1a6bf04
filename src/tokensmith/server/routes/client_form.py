"""The machine-to-machine endpoints that a client calls with a form (token, revocation,
introspection), written against ASGI itself: a ``Request`` and a ``Response`` per call would do
nothing for them but cost (about a sixth of a ``client_credentials`` request's CPU). Each is one
function of ``(scope, receive, send)``, served the same way on both of the app's paths: by the
router (a :class:`~tokensmith.server.schemas.DescribedRoute` whose app is the function) and by
the fast path (``server/fastpath.py``), with the same middleware and exception handlers around.

The first steps they share: the form body (strictly parsed, once), the single ``Authorization``
header, and the request's rate limits (``server.ratelimit``): an address past its limit of failed
client authentications is refused here, before any credential is looked at; the per-client limit
is counted by the core once the client has authenticated (``ClientForm.limit``). The body is read
whole (under ``max_form_bytes`` and ``form_read_timeout``) before the endpoint opens its
transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tokensmith.core.errors import InvalidRequest, OAuthError
from tokensmith.core.params import check_form_content_type, parse_params
from tokensmith.server.errors import json_error
from tokensmith.server.http import receive_body
from tokensmith.server.ratelimit import RequestLimits
from tokensmith.server.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ClientForm:
    params: dict[str, str]
    authorization: str | None = field(repr=False)
    limit: RequestLimits


async def read_client_form(
    scope: Scope, receive: Receive, rt: Runtime, *, endpoint: str, max_value_length: int
) -> ClientForm:
    """The form, its ``Authorization`` header (at most one) and the request's limits, the
    address's checked. ``endpoint``: the endpoint's own path (its setting), which names its rate
    limit. Not the path the request spelled: the router also routes other spellings to the
    endpoint (``/token%0A``: a route's pattern ends in ``$``), which must not get budgets of
    their own. The headers are read in one pass over the scope's (lower-case names, as
    ASGI servers give them and as Starlette's ``Headers`` expects them): the first
    ``Content-Type`` and ``Content-Length``, every ``Authorization``."""
    content_type = declared = None
    authorization: str | None = None
    repeated = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"content-length":
            if declared is None:
                declared = value.decode("latin-1")
        elif name == b"authorization":
            repeated = authorization is not None
            authorization = value.decode("latin-1")
    check_form_content_type(content_type)
    settings = rt.settings
    body = await receive_body(
        receive, declared, settings.max_form_bytes, time_limit=settings.form_read_timeout
    )
    params = parse_params(body, max_value_length=max_value_length)
    if repeated:
        raise InvalidRequest("the authorization header was sent more than once")
    # The peer, or the client named by a trusted proxy (forwarded_allow_ips, set by uvicorn).
    client = scope.get("client")
    address = client[0] if client else "unknown"
    limit = rt.rate_limiter.for_request(endpoint, address)
    pending = limit.address_check()
    if pending is not None:
        await pending
    return ClientForm(params, authorization, limit)


def runtime_of(scope: Scope) -> Runtime:
    """The server's runtime, from the app the server put in the scope."""
    rt: Runtime = scope["app"].state.runtime
    return rt


async def send_error(scope: Scope, receive: Receive, send: Send, exc: OAuthError) -> None:
    """The endpoint's error (RFC 6749 §5.2 JSON, logged and counted as ``json_error`` does)."""
    request = Request(scope, receive, send)
    await json_error(request, exc)(scope, receive, send)
