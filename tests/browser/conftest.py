"""Browser end-to-end tests: Debian's Chromium driven by Playwright (pytest-playwright's sync
``page``), against the whole CloudDocs world started by the test.

Each test gets its own world, built exactly as ``tokensmith demo`` builds it
(:func:`tokensmith.demo.servers.build_apps`): the authorization server, the CloudDocs API, web
app and SPA on free loopback ports, named ``localhost`` as in the demo (passkeys need a domain),
served by uvicorn in a background thread with its own event loop (the sync Playwright API owns
the test thread). One clock, shared by the three Python servers, can be moved forward to expire
tokens without waiting. An "attacker" site is served on ``127.0.0.1`` (a different *site* from
``localhost``, so the browser treats its requests as cross-site).

On failure a screenshot of the page is saved under ``test-results/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.services import chromium_path
from tests.support.settings import FAST_HASH
from tokensmith.demo.seed import DemoData, DemoUrls, seed
from tokensmith.demo.servers import build_apps, demo_settings, serve

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]
START_TIMEOUT = 30.0


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Mark these tests ``browser`` (before ``-m`` selects), and once every other hook has
    reordered and deselected, run them after every other test of the session: pytest's own
    reordering by fixture parameters would otherwise put them first.

    pytest-playwright's sync API keeps an event loop running in the main thread from the first
    browser test to the end of the session (its ``playwright`` fixture is session-scoped);
    ``asyncio.run`` and pytest-asyncio's loops — the asyncio browser tests of ``tests/interop``
    — cannot start while it does.
    """
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
    yield
    ours = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    if ours:
        mine = set(ours)
        items[:] = [item for item in items if item not in mine] + ours


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Debian's Chromium, never a downloaded browser build."""
    return {"executable_path": chromium_path(), "args": CHROMIUM_ARGS, "timeout": 30_000}


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1000, "height": 760}, "locale": "en-GB"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, page: Page) -> Iterator[None]:
    """Save what the browser showed when a test failed: test-results/<test>.png."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    RESULTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    try:
        page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)
    except Exception as exc:  # a crashed page must not hide the test's own failure
        print(f"no screenshot: {exc!r}")


class WorldClock:
    """Real time plus an offset that tests move forward (servers only; the browser keeps its
    own clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def attacker_app(world: World) -> Starlette:
    """Pages of another site: a form aimed at the consent endpoint, and frames."""

    async def csrf(request: Request) -> HTMLResponse:
        fields = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
            for k, v in request.query_params.items()
            if k != "action"
        )
        action = escape(request.query_params["action"])
        return HTMLResponse(
            "<!doctype html><title>Win a prize</title><h1>Claim your prize</h1>"
            f'<form method="post" action="{action}">{fields}'
            '<button type="submit" id="claim">Claim</button></form>'
        )

    async def frame(request: Request) -> HTMLResponse:
        target = escape(request.query_params["src"])
        return HTMLResponse(
            "<!doctype html><title>Framing</title>"
            f'<iframe id="victim" title="victim" src="{target}"></iframe>'
            '<iframe id="control" title="control" src="/hello"></iframe>'
        )

    async def hello(request: Request) -> HTMLResponse:
        return HTMLResponse('<!doctype html><title>hello</title><p id="hello">hello</p>')

    return Starlette(routes=[Route("/csrf", csrf), Route("/frame", frame), Route("/hello", hello)])


@dataclass
class World:
    folder: Path
    urls: DemoUrls
    attacker: str
    clock: WorldClock = field(default_factory=WorldClock)
    data: DemoData | None = None

    @property
    def demo(self) -> DemoData:
        assert self.data is not None
        return self.data

    # -- what a person does ----------------------------------------------------------------
    def sign_in(self, page: Page) -> None:
        """On tokensmith's sign-in page: type the demo user's credentials and submit."""
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username or email").fill(self.demo.username)
        page.get_by_label("Password").fill(self.demo.password)
        page.get_by_role("button", name="Sign in", exact=True).click()

    def consent(self, page: Page, decision: str = "Allow") -> None:
        expect(
            page.get_by_role("heading", name=re.compile("to access your account"))
        ).to_be_visible()
        page.get_by_role("button", name=decision, exact=True).click()

    def web_sign_in(self, page: Page) -> None:
        page.goto(self.urls.web)
        page.get_by_role("link", name="Sign in with tokensmith").click()
        self.sign_in(page)
        self.consent(page)
        expect(page.get_by_role("heading", name="Your documents")).to_be_visible()


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def start_world(tmp_path: Path, *, access_token_ttl: int | None = None) -> Iterator[World]:
    sockets = {name: _socket() for name in ("issuer", "web", "api", "spa", "attacker")}
    port = {name: sock.getsockname()[1] for name, sock in sockets.items()}
    urls = DemoUrls.on_ports(
        issuer=port["issuer"], web=port["web"], api=port["api"], spa=port["spa"]
    )
    folder = tmp_path / "world"
    folder.mkdir()
    world = World(folder, urls, attacker=f"http://127.0.0.1:{port['attacker']}")
    settings = demo_settings(folder, urls.issuer, **FAST_HASH)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        world.data = await seed(settings, folder, urls=urls, access_token_ttl=access_token_ttl)
        apps = build_apps(settings, world.data, folder, clock=world.clock)
        stop = asyncio.Event()
        state["stop"] = stop
        state["loop"] = asyncio.get_running_loop()
        await serve(
            [
                (apps.issuer, sockets["issuer"]),
                (apps.web, sockets["web"]),
                (apps.api, sockets["api"]),
                (apps.spa, sockets["spa"]),
                (attacker_app(world), sockets["attacker"]),
            ],
            settings=settings,
            stop=stop,
            on_started=ready.set,
        )

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            state["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="clouddocs-world", daemon=True)
    thread.start()
    try:
        assert ready.wait(START_TIMEOUT), "the CloudDocs world did not start"
        if "error" in state:
            raise state["error"]
        yield world
    finally:
        if "loop" in state and thread.is_alive():
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(START_TIMEOUT)
        for sock in sockets.values():
            sock.close()
        assert not thread.is_alive(), "the CloudDocs world did not stop"
        if "error" in state:
            raise state["error"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    chromium_path()  # skip (or fail in CI) before starting anything
    yield from start_world(tmp_path)


@pytest.fixture
def short_lived_world(tmp_path: Path) -> Iterator[World]:
    """Access tokens of the web app and SPA live 60 s (the shortest tokensmith allows)."""
    chromium_path()
    yield from start_world(tmp_path, access_token_ttl=60)
