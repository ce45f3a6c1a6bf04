"""The first steps shared by the token, revocation and introspection endpoints: the form body
(strictly parsed, once), the single ``Authorization`` header, and the per-client rate limit,
which refuses before any authentication or database work. The body is read whole (under
``max_form_bytes`` and ``form_read_timeout``) before the endpoint opens its transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from tokensmith.server.http import claimed_client_id, read_form, single_header
from tokensmith.server.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ClientForm:
    params: dict[str, str]
    authorization: str | None = field(repr=False)


async def read_client_form(request: Request, rt: Runtime, *, max_value_length: int) -> ClientForm:
    params = await read_form(
        request,
        limit=rt.settings.max_form_bytes,
        max_value_length=max_value_length,
        time_limit=rt.settings.form_read_timeout,
    )
    authorization = single_header(request, "authorization")
    await rt.rate_limiter.check(request.url.path, claimed_client_id(params, authorization))
    return ClientForm(params, authorization)
