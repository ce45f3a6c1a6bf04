"""Seed a demo database: the CloudDocs API, its clients, the MCP server's API and a demo user.

Idempotent: the first run creates everything and writes ``demo.json`` (mode 0600) with the
generated secrets and password; later runs read it back and create nothing. The clients'
redirect URIs are those of the CloudDocs apps (``tokensmith.demo.clouddocs``) on the demo's
ports, so a folder belongs to one set of ports: a later run on other ports is refused with an
explanation.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tokensmith.admin import Admin, ClientMetadata
from tokensmith.demo.mcp_server import TOOLS_SCOPE, TOOLS_SCOPE_DESCRIPTION
from tokensmith.settings import Settings

__all__ = [
    "API_SCOPES",
    "DEMO_VERSION",
    "MCP_PATH",
    "MCP_SCOPES",
    "DemoData",
    "DemoDataError",
    "DemoUrls",
    "ports",
    "seed",
]

DEMO_VERSION = 5  # 4: the MCP server's API; 5: on localhost (passkeys)

API_SCOPES = {
    "docs:read": "Read your documents.",
    "docs:write": "Create, change and delete your documents.",
    "docs:admin": "List every user's documents (for the operator's tools).",
}
WEB_SCOPES = ("openid", "profile", "email", "offline_access", "docs:read", "docs:write")
SPA_SCOPES = ("openid", "profile", "offline_access", "docs:read", "docs:write")
# the demo MCP server (tokensmith.demo.mcp_server): an API whose identifier is its endpoint's URL
MCP_SCOPES = {TOOLS_SCOPE: TOOLS_SCOPE_DESCRIPTION}
MCP_PATH = "/mcp"
# The servers listen on 127.0.0.1 but are named ``localhost``: a WebAuthn RP ID (the issuer's
# host, core/passkeys.py) must be a domain, never an IP address, and browsers count
# http://localhost as a secure context, so passkeys work in the demo.
HOST = "localhost"


class DemoDataError(Exception):
    """The demo folder cannot be used as it is (another version, other ports)."""


def ports(base: int) -> dict[str, int]:
    return {"issuer": base, "web": base + 1, "api": base + 2, "spa": base + 3, "mcp": base + 4}


@dataclass(frozen=True)
class DemoUrls:
    """The origins of the demo servers (the MCP server's: ``mcp``), on :data:`HOST`."""

    issuer: str
    web: str
    api: str
    spa: str
    mcp: str

    @classmethod
    def on_ports(
        cls, *, issuer: int, web: int, api: int, spa: int, mcp: int | None = None
    ) -> DemoUrls:
        def url(port: int) -> str:
            return f"http://{HOST}:{port}"

        return cls(
            issuer=url(issuer),
            web=url(web),
            api=url(api),
            spa=url(spa),
            mcp=url(spa + 1 if mcp is None else mcp),
        )

    @property
    def mcp_endpoint(self) -> str:
        """The MCP endpoint's URL: the MCP server's resource identifier and tokens' audience."""
        return self.mcp + MCP_PATH

    @classmethod
    def from_base(cls, base: int) -> DemoUrls:
        return cls.on_ports(**ports(base))


@dataclass
class DemoData:
    version: int
    issuer: str
    api: str
    web_url: str
    spa_url: str
    username: str
    password: str
    web_client_id: str
    web_client_secret: str
    web_redirect_uri: str
    web_secret_key: str  # hex; the web app's session and token-encryption key
    spa_client_id: str
    spa_redirect_uri: str
    swagger_client_id: str
    worker_client_id: str
    worker_client_secret: str
    mcp_url: str  # the MCP endpoint, identifier of its API (audience of its tokens)


def _load(state: Path, urls: DemoUrls) -> DemoData:
    raw = json.loads(state.read_text())
    names = {f.name for f in fields(DemoData)}
    if raw.get("version") != DEMO_VERSION or set(raw) != names:
        raise DemoDataError(
            f"{state.parent} was made by another version of the demo; delete that folder "
            "(or pick another with --dir) to start afresh"
        )
    data = DemoData(**raw)
    if (data.issuer, data.web_url, data.api, data.spa_url, data.mcp_url) != (
        urls.issuer,
        urls.web,
        urls.api,
        urls.spa,
        urls.mcp_endpoint,
    ):
        raise DemoDataError(
            f"{state.parent} was set up for the authorization server at {data.issuer}; run the "
            "demo with the same --port, or pick another folder with --dir"
        )
    return data


async def seed(
    settings: Settings, folder: Path, *, urls: DemoUrls, access_token_ttl: int | None = None
) -> DemoData:
    """Create (once) and return the demo's API, clients and user.

    ``access_token_ttl`` shortens the web app's and SPA's access tokens (tests of refresh).
    """
    state = folder / "demo.json"
    if state.exists():
        return _load(state, urls)
    web_redirect = f"{urls.web}/auth/tokensmith/callback"
    spa_redirect = f"{urls.spa}/"
    password = secrets.token_urlsafe(12)
    async with Admin(settings) as admin:
        await admin.create_api(
            identifier=urls.api,
            name="CloudDocs API",
            scopes=list(API_SCOPES),
            descriptions=API_SCOPES,
        )
        web = await admin.create_client(
            ClientMetadata(
                name="CloudDocs",
                client_type="confidential",
                redirect_uris=(web_redirect,),
                grant_types=("authorization_code", "refresh_token"),
                scopes=WEB_SCOPES,
                apis=(urls.api,),
                access_token_ttl=access_token_ttl,
                post_logout_redirect_uris=(f"{urls.web}/signed-out",),
            )
        )
        spa = await admin.create_client(
            ClientMetadata(
                name="CloudDocs SPA",
                client_type="public",
                redirect_uris=(spa_redirect,),
                grant_types=("authorization_code", "refresh_token"),
                scopes=SPA_SCOPES,
                apis=(urls.api,),
                access_token_ttl=access_token_ttl,
                post_logout_redirect_uris=(spa_redirect,),
            )
        )
        swagger = await admin.create_client(
            ClientMetadata(
                name="CloudDocs API docs (Swagger UI)",
                client_type="public",
                redirect_uris=(f"{urls.api}/docs/oauth2-redirect",),
                grant_types=("authorization_code",),
                scopes=("docs:read", "docs:write"),
                apis=(urls.api,),
            )
        )
        worker = await admin.create_client(
            ClientMetadata(
                name="CloudDocs worker",
                client_type="confidential",
                grant_types=("client_credentials",),
                scopes=("docs:admin",),
                apis=(urls.api,),
            )
        )
        await admin.create_api(
            identifier=urls.mcp_endpoint,
            name="Demo MCP server",
            scopes=list(MCP_SCOPES),
            descriptions=MCP_SCOPES,
            dynamic_clients=True,  # MCP clients identify themselves; nobody registers them
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
        version=DEMO_VERSION,
        issuer=urls.issuer,
        api=urls.api,
        web_url=urls.web,
        spa_url=urls.spa,
        username="demo",
        password=password,
        web_client_id=web.client.client_id,
        web_client_secret=web.client_secret,
        web_redirect_uri=web_redirect,
        web_secret_key=secrets.token_hex(32),
        spa_client_id=spa.client.client_id,
        spa_redirect_uri=spa_redirect,
        swagger_client_id=swagger.client.client_id,
        worker_client_id=worker.client.client_id,
        worker_client_secret=worker.client_secret,
        mcp_url=urls.mcp_endpoint,
    )
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(data), fh, indent=2)
    return data
