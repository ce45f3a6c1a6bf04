"""The README's path to a first login (issue 15, trap 3): its "Running your own server" commands,
in order, through the real ``tokensmith`` console script, then a person signs in to an app built
with ``tokensmith.client`` with its defaults (a verified e-mail required).

The block runs as written except for what only a real deployment has: the issuer and the app are
on 127.0.0.1 (free ports) instead of auth.example.com and app.example.com, the database is a
scratch one, ``--password '...'`` a real password, and the server listens on 127.0.0.1.
"""

import asyncio
import dataclasses
import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urljoin

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from tests.server.harness import hidden_fields
from tests.support.doc_samples import script, sh_block, wait_for_metadata
from tokensmith.client import (
    ActiveSession,
    ClientAuth,
    ClientConfig,
    OIDCProvider,
    SqlLoginStore,
    create_all,
    link_by_provider_subject,
)
from tokensmith.demo.servers import serve
from tokensmith.settings import Settings
from tokensmith.testing.ports import reserve_port

PASSWORD = "a long test passphrase"  # what the docs script puts for --password '...'


def toolkit_app(auth: ClientAuth) -> FastAPI:
    app = FastAPI()
    app.include_router(auth.router)
    OptionalSession = Annotated[ActiveSession | None, Depends(auth.optional_session)]

    @app.get("/")
    async def home(session: OptionalSession) -> dict[str, Any]:
        return {"signed_in": session is not None}

    return app


async def sign_in(ua: httpx.AsyncClient, app_url: str, issuer: str) -> httpx.Response:
    """Start at the app, fill in tokensmith's login and consent pages, return the app's answer
    to the callback (or the page the flow stopped at)."""
    response = await ua.get(f"{app_url}/auth/tokensmith/login?next=/")
    for _ in range(12):
        if response.status_code in (302, 303):
            location = urljoin(str(response.url), response.headers["location"])
            response = await ua.get(location)
            if location.startswith(f"{app_url}/auth/tokensmith/callback"):
                return response
            continue
        if response.status_code != 200 or not str(response.url).startswith(issuer):
            return response
        fields = hidden_fields(response.text)
        if response.url.path == "/login":
            fields.update(username="alice", password=PASSWORD)
        elif response.url.path == "/consent":
            fields["decision"] = "allow"
        else:
            return response
        response = await ua.post(str(response.url.copy_with(query=None)), data=fields)
    raise AssertionError("the sign-in did not finish")


async def toolkit_login(
    *, issuer: str, app_url: str, app_sock: socket.socket, created: dict[str, Any], folder: Path
) -> None:
    """An app built with the client toolkit's defaults (a verified e-mail required), served on
    ``app_sock``; a person signs in through it and is signed in."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'app.db'}")
    http = httpx.AsyncClient(timeout=10.0)
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        await create_all(engine)
        store = SqlLoginStore(engine)
        auth = ClientAuth(
            ClientConfig(
                secret_key=b"s" * 32,
                base_url=app_url,
                providers={
                    "tokensmith": OIDCProvider(
                        issuer=issuer,
                        client_id=created["client_id"],
                        client_secret=created["client_secret"],
                    )
                },
            ),
            store=store,
            http=http,
            find_or_create_user=link_by_provider_subject(store),
        )
        task = asyncio.create_task(
            # the app served as the demo serves its apps (its settings: only uvicorn's options)
            serve([(toolkit_app(auth), app_sock)], settings=Settings(issuer=issuer), stop=stop)
        )
        async with httpx.AsyncClient(timeout=10.0) as ua:
            for _ in range(500):  # bounded: up to 10 s for the app to answer
                try:
                    await ua.get(f"{app_url}/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            callback = await sign_in(ua, app_url, issuer)
            assert callback.status_code == 303, callback.text[:800]
            assert (await ua.get(f"{app_url}/")).json() == {"signed_in": True}
    finally:
        stop.set()
        if task is not None:
            await task
        await http.aclose()
        await engine.dispose()


@pytest.mark.slow
def test_readme_commands_then_a_toolkit_login_succeeds(sqlite_url: str, tmp_path: Path) -> None:
    as_sock, app_sock = reserve_port(), reserve_port()
    issuer = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    as_port = as_sock.getsockname()[1]
    as_sock.close()  # uvicorn of `tokensmith serve` binds it itself

    block = sh_block("README.md", "tokensmith serve")
    code = block.code.replace("https://auth.example.com", issuer)
    code = code.replace("https://app.example.com", app_url)
    run = script(sqlite_url, tmp_path)
    run.run_block(dataclasses.replace(block, code=code))
    created = json.loads(run.outputs["clients create"][0])
    (serve_argv,) = run.commands_left
    argv = ["tokensmith", *serve_argv]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(as_port)
    server = subprocess.Popen(
        argv, env=run.env, cwd=run.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert wait_for_metadata(issuer, server)["issuer"] == issuer
        asyncio.run(
            toolkit_login(
                issuer=issuer, app_url=app_url, app_sock=app_sock, created=created, folder=tmp_path
            )
        )
    finally:
        app_sock.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
