"""The code samples of docs/authorization-server.md run."""

from __future__ import annotations

from pathlib import Path

import httpx
from docs.examples.server_app import build


async def test_server_app_sample_serves_metadata(tmp_path: Path) -> None:
    app = build(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://auth.example.com") as c:
            meta = (await c.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == "https://auth.example.com"
    assert meta["code_challenge_methods_supported"] == ["S256"]
