"""Server-rendered pages (Jinja2, autoescaped, no inline script or style)."""

from __future__ import annotations

from typing import Any

from jinja2 import BytecodeCache, Environment, PackageLoader, select_autoescape
from jinja2.bccache import Bucket
from starlette.responses import HTMLResponse

from tokensmith.settings import Settings


class _CompiledTemplates(BytecodeCache):
    """The compiled templates, shared by every app of the process: each app has its own
    environment (its globals), and would otherwise parse and compile each template again
    (milliseconds a page; tests and embedders make many apps). Jinja checks each entry
    against the template's source before using it. Only for environments configured alike
    (the compiled code depends on the configuration, not on the globals): ``Pages``'s."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


class Pages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = Environment(
            loader=PackageLoader("tokensmith.server", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
            bytecode_cache=_COMPILED,
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
