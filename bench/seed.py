"""The benchmark's registrations: one API, client-credentials clients (JWT and opaque access
tokens), a confidential web client for the code and refresh grants, and one user."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, replace

from tokensmith.admin import Admin
from tokensmith.settings import Settings

API = "https://api.bench"
SCOPES = ("docs:read", "docs:write")
REDIRECT = "https://rp.bench/callback"
USERNAME = "bench"
PASSWORD = "bench password 123"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass(frozen=True)
class Seeded:
    cc_jwt_id: str
    cc_jwt_secret: str
    cc_opaque_id: str
    cc_opaque_secret: str
    web_id: str
    web_secret: str

    @property
    def cc_jwt_auth(self) -> str:
        return basic(self.cc_jwt_id, self.cc_jwt_secret)

    @property
    def cc_opaque_auth(self) -> str:
        return basic(self.cc_opaque_id, self.cc_opaque_secret)

    @property
    def web_auth(self) -> str:
        return basic(self.web_id, self.web_secret)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


CC_BODY = "grant_type=client_credentials&scope=docs%3Aread"


async def seed(settings: Settings) -> Seeded:
    """Register what the scenarios need (a fresh database; also migrates it and makes keys)."""
    async with Admin(settings) as admin:
        await admin.create_api(identifier=API, scopes=SCOPES, name="Bench API")
        common = {"client_type": "confidential", "scopes": SCOPES, "api": API}
        cc_jwt = await admin.create_client(
            name="bench cc jwt", grant_types=["client_credentials"], **common
        )
        cc_opaque = await admin.create_client(
            name="bench cc opaque",
            grant_types=["client_credentials"],
            access_token_format="opaque",
            **common,
        )
        web = await admin.create_client(
            name="bench web",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT],
            **common,
        )
        await admin.create_user(username=USERNAME, password=PASSWORD)
    assert cc_jwt.client_secret
    assert cc_opaque.client_secret
    assert web.client_secret
    return Seeded(
        cc_jwt_id=cc_jwt.client.client_id,
        cc_jwt_secret=cc_jwt.client_secret,
        cc_opaque_id=cc_opaque.client.client_id,
        cc_opaque_secret=cc_opaque.client_secret,
        web_id=web.client.client_id,
        web_secret=web.client_secret,
    )


def login_username(i: int) -> str:
    return f"bench-login-{i:02d}"


async def seed_login_users(settings: Settings, count: int) -> list[str]:
    """``count`` users for the logins scenario, one per login in flight: the account back-off
    (``core.throttle.ACCOUNT``) lets at most five attempts on one account be checked at once,
    which is what it is for; each user's password is hashed with ``settings``' argon2 cost."""
    names = [login_username(i) for i in range(count)]
    async with Admin(settings) as admin:
        for name in names:
            await admin.create_user(username=name, password=PASSWORD)
    return names


async def seed_peer_web(settings: Settings, seeded: Seeded, token_format: str) -> Seeded:
    """``seeded`` with its web client replaced by another one that may also ask for ``openid``
    and issues ``token_format`` access tokens ("opaque": stored, like django-oauth-toolkit's):
    the like-for-like comparison with the peer."""
    async with Admin(settings) as admin:
        web = await admin.create_client(
            name=f"bench web {token_format}",
            client_type="confidential",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT],
            scopes=(*SCOPES, "openid"),
            api=API,
            access_token_format=token_format,
        )
    assert web.client_secret
    return replace(seeded, web_id=web.client.client_id, web_secret=web.client_secret)
