"""Server-rendered pages (Jinja2, autoescaped, no inline script or style)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from tokensmith.settings import Settings


class Pages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = Environment(
            loader=PackageLoader("tokensmith.server", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
        )
        self.env.globals["product_name"] = settings.product_name
        # development only: the pages that send a message link to where it lands
        self.env.globals["outbox_url"] = (
            settings.outbox_path if settings.email_backend == "outbox" else None
        )

    def render(
        self, name: str, *, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status, headers=headers)

    def error(
        self,
        *,
        title: str,
        message: str,
        advice: str,
        status: int = 400,
        code: str | None = None,
    ) -> HTMLResponse:
        return self.render(
            "error.html", status=status, title=title, message=message, advice=advice, code=code
        )
