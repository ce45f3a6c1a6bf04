"""Seed a demo database: the CloudDocs API, its clients and a demo user.

Idempotent: the first run creates everything and writes ``demo.json`` (mode 0600) with the
generated secrets and password; later runs read it back and create nothing.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from tokensmith.admin import Admin
from tokensmith.settings import Settings

API_SCOPES = {
    "docs:read": "Read your documents.",
    "docs:write": "Create, change and delete your documents.",
    "docs:admin": "List every user's documents (for the operator's tools).",
}


@dataclass
class DemoData:
    issuer: str
    api: str
    username: str
    password: str
    web_client_id: str
    web_client_secret: str
    web_redirect_uri: str
    spa_client_id: str
    spa_redirect_uri: str
    worker_client_id: str
    worker_client_secret: str


def ports(base: int) -> dict[str, int]:
    return {"issuer": base, "web": base + 1, "api": base + 2, "spa": base + 3}


async def seed(settings: Settings, folder: Path, *, base_port: int) -> DemoData:
    """Create (once) and return the demo's API, clients and user."""
    state = folder / "demo.json"
    if state.exists():
        return DemoData(**json.loads(state.read_text()))
    p = ports(base_port)
    api = f"http://127.0.0.1:{p['api']}"
    web_redirect = f"http://127.0.0.1:{p['web']}/auth/tokensmith/callback"
    spa_redirect = f"http://127.0.0.1:{p['spa']}/"
    password = secrets.token_urlsafe(12)
    async with Admin(settings) as admin:
        await admin.create_api(
            identifier=api, name="CloudDocs API", scopes=list(API_SCOPES), descriptions=API_SCOPES
        )
        web = await admin.create_client(
            name="CloudDocs",
            client_type="confidential",
            redirect_uris=[web_redirect],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile", "email", "offline_access", "docs:read", "docs:write"],
            api=api,
            post_logout_redirect_uris=[f"http://127.0.0.1:{p['web']}/"],
        )
        spa = await admin.create_client(
            name="CloudDocs SPA",
            client_type="public",
            redirect_uris=[spa_redirect],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile", "docs:read", "docs:write"],
            api=api,
            post_logout_redirect_uris=[spa_redirect],
        )
        worker = await admin.create_client(
            name="CloudDocs worker",
            client_type="confidential",
            grant_types=["client_credentials"],
            scopes=["docs:admin"],
            api=api,
        )
        await admin.create_user(
            username="demo",
            password=password,
            email="demo@clouddocs.test",
            email_verified=True,
            name="Demo User",
        )
    if web.client_secret is None or worker.client_secret is None:
        raise RuntimeError("confidential demo clients were created without secrets")
    data = DemoData(
        issuer=settings.issuer,
        api=api,
        username="demo",
        password=password,
        web_client_id=web.client.client_id,
        web_client_secret=web.client_secret,
        web_redirect_uri=web_redirect,
        spa_client_id=spa.client.client_id,
        spa_redirect_uri=spa_redirect,
        worker_client_id=worker.client.client_id,
        worker_client_secret=worker.client_secret,
    )
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(data), fh, indent=2)
    return data
