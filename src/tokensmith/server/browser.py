"""The browser side of the authorization server: the browser-binding cookie, the SSO session
cookie and CSRF tokens.

- ``browser`` cookie: a random id that binds pending interactions (login/consent transactions) to
  the browser that started them; a link to ``/login?txn=...`` opened elsewhere does not work.
- ``session`` cookie: the SSO session id; only its HMAC digest is stored; a new id at every login.
- CSRF: the form token is an HMAC of the browser id and the interaction id (synchroniser token
  without server state); posts also need a same-origin ``Origin`` and ``Sec-Fetch-Site`` when
  the browser sends them (a sibling subdomain is "same-site", not "same-origin": refused too).
Cookies are HttpOnly and SameSite=Lax, and ``__Host-`` + Secure when the issuer is https.

The cookies are read once per request into a frozen :class:`Browser`; core answers say how the
session cookie changes (``core.interaction.SessionChange``), and :meth:`Cookies.apply` writes that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.interaction import KEEP, SessionChange
from tokensmith.core.models import Session
from tokensmith.core.ports import Stores
from tokensmith.core.secrets import SESSION_PREFIX, digest, equals, new_secret
from tokensmith.settings import Settings


@dataclass(frozen=True, slots=True)
class Browser:
    """The browser of a request, as its cookies say (``core.interaction.BrowserView``)."""

    browser_id: str = field(repr=False)
    browser_digest: str
    is_new: bool
    session: Session | None = None


class Cookies:
    def __init__(self, settings: Settings, pepper: bytes) -> None:
        self.settings = settings
        self.pepper = pepper
        prefix = "__Host-" if settings.is_https else ""
        self.browser_name = f"{prefix}{settings.cookie_prefix}_browser"
        self.session_name = f"{prefix}{settings.cookie_prefix}_session"
        parts = urlsplit(settings.issuer)
        self.origin = f"{parts.scheme}://{parts.netloc}"

    async def load(self, request: Request, stores: Stores, now: int) -> Browser:
        browser_id = request.cookies.get(self.browser_name)
        is_new = browser_id is None or not 20 <= len(browser_id) <= 100
        if browser_id is None or is_new:
            browser_id = new_secret("", nbytes=24)
        session = None
        session_value = request.cookies.get(self.session_name)
        if session_value and session_value.startswith(SESSION_PREFIX) and len(session_value) < 100:
            session = await stores.sessions.get(digest(session_value, self.pepper), now)
        return Browser(browser_id, digest("browser|" + browser_id, self.pepper), is_new, session)

    def csrf_token(self, browser: Browser, interaction_id: str) -> str:
        return digest(f"csrf|{browser.browser_id}|{interaction_id}", self.pepper)

    def check_csrf(
        self, request: Request, browser: Browser, interaction_id: str, token: str
    ) -> bool:
        origin = request.headers.get("origin")
        fetch_site = request.headers.get("sec-fetch-site")
        if origin == "null" and fetch_site == "same-origin":
            # Our pages are Referrer-Policy: no-referrer, under which browsers send
            # "Origin: null" even on same-origin form posts; Sec-Fetch-Site vouches for those.
            origin = None
        if origin is not None and origin != self.origin:
            return False
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return False
        if browser.is_new:
            return False
        return equals(self.csrf_token(browser, interaction_id), token)

    def apply(self, response: Response, browser: Browser, change: SessionChange = KEEP) -> Response:
        """Set the browser cookie of a new browser and the session cookie as ``change`` says."""
        secure = self.settings.is_https
        if browser.is_new:
            response.set_cookie(
                self.browser_name,
                browser.browser_id,
                max_age=400 * 86400,
                path="/",
                secure=secure,
                httponly=True,
                samesite="lax",
            )
        if change.new_value is not None:
            response.set_cookie(
                self.session_name,
                change.new_value,
                max_age=self.settings.session_ttl,
                path="/",
                secure=secure,
                httponly=True,
                samesite="lax",
            )
        elif change.clear:
            response.delete_cookie(
                self.session_name, path="/", secure=secure, httponly=True, samesite="lax"
            )
        return response
