"""What the self-service pages (``signup``, ``forgot_password``, ``confirm``, ``reset_password``)
share: rendering their template with its form's CSRF token and the answer of ``core.self_service``
(``Retry-After`` when it says to wait), and the steps every ``GET`` and ``POST`` takes before the
page's own work — whether the operator offers the page (else its 404 page), the browser's cookies
loaded in the request's transaction, and for a form its size limits and CSRF check (else the
error page). Each route module keeps only what is its own: its template's values, its query or
fields, and its core calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import CsrfRejected, PageNotOffered
from tokensmith.core.interaction import well_formed_txn
from tokensmith.core.ports import Stores
from tokensmith.core.self_service import FormAnswer
from tokensmith.server.browser import Browser
from tokensmith.server.errors import page_error
from tokensmith.server.routes.interaction import login_url, read_posted_form
from tokensmith.server.runtime import Runtime
from tokensmith.server.state import runtime
from tokensmith.settings import Settings


def always_offered(rt: Runtime, values: Mapping[str, str]) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Visit:
    """One request to a self-service page, inside its first transaction: the query (``GET``) or
    the posted fields (``POST``), the browser, and the client's address (the throttles' key)."""

    rt: Runtime
    stores: Stores
    browser: Browser
    values: Mapping[str, str]
    address: str


@dataclass(frozen=True, slots=True)
class SelfServicePage:
    template: str
    form: str
    """The name the CSRF tokens of the page's form are bound to."""
    forged: str
    """The error page's message for a form that fails the CSRF check."""
    action: Callable[[Settings], str]
    """The path the form posts to."""
    offered: Callable[[Runtime, Mapping[str, str]], str | None] = always_offered
    """``None`` when the operator offers the page for this query or form, else the message of
    its 404 page."""
    headers: Mapping[str, str] | None = None
    """Response headers of its own (``Cache-Control: no-store`` for a page holding a link's
    secret)."""

    def render(
        self, rt: Runtime, browser: Browser, answer: FormAnswer | None = None, **values: Any
    ) -> Response:
        """The page with ``answer`` (a message, an error, a wait) and the template's own
        ``values`` (``login_url``: the sign-in to link back to; none unless given: the bare
        login page is no sign-in, it says "expired", so the page tells the person to sign in
        from their application instead, as after following a mailed link)."""
        answer = answer or FormAnswer()
        values.setdefault("login_url", None)
        response = rt.pages.render(
            self.template,
            status=answer.status,
            headers=dict(self.headers) if self.headers else None,
            action=self.action(rt.settings),
            csrf_token=rt.cookies.csrf_token(browser, self.form),
            message=answer.message,
            error=answer.error,
            **values,
        )
        if answer.retry_after:
            response.headers["Retry-After"] = str(answer.retry_after)
        return rt.cookies.apply(response, browser)

    def check_offered(self, rt: Runtime, values: Mapping[str, str]) -> None:
        refusal = self.offered(rt, values)
        if refusal is not None:
            raise PageNotOffered(refusal)

    @asynccontextmanager
    async def opened(self, request: Request) -> AsyncIterator[Visit | Response]:
        """A ``GET``: its 404 page when the page is not offered, else the visit."""
        rt = runtime(request)
        try:
            self.check_offered(rt, request.query_params)
        except PageNotOffered as exc:
            yield page_error(request, rt.pages, exc)
            return
        async with rt.db.transaction() as stores:
            browser = await rt.cookies.load(request, stores, rt.server.now())
            yield Visit(rt, stores, browser, request.query_params, _address(request))

    @asynccontextmanager
    async def submitted(
        self, request: Request, *, max_value_length: int
    ) -> AsyncIterator[Visit | Response]:
        """A ``POST``: the refusal of a form too large, too slow, not offered or forged, else
        the visit with the posted fields."""
        rt = runtime(request)
        form = await read_posted_form(request, rt, max_value_length=max_value_length)
        if isinstance(form, Response):
            yield form
            return
        async with rt.db.transaction() as stores:
            browser = await rt.cookies.load(request, stores, rt.server.now())
            try:
                self.check_offered(rt, form)
                if not rt.cookies.check_csrf(
                    request, browser, self.form, form.get("csrf_token", "")
                ):
                    raise CsrfRejected(self.forged)
            except (CsrfRejected, PageNotOffered) as exc:
                yield rt.cookies.apply(page_error(request, rt.pages, exc), browser)
                return
            yield Visit(rt, stores, browser, form, _address(request))


def back_to_sign_in(rt: Runtime, txn: str | None) -> dict[str, Any]:
    """The template values of a page opened from a sign-in (``txn``, from the query or the
    form): the link back to it and the hidden field that carries it, when well formed."""
    return {"login_url": login_url(rt, txn), "txn": well_formed_txn(txn)}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
