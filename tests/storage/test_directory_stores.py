"""Store contract: APIs, clients and users (``core.ports.ApiStore``, ``ClientStore``,
``UserStore``) behave the same on every implementation: create/get/list/delete, a duplicate key
is ``Conflict`` and leaves the transaction usable, updates report whether a row changed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tokensmith.core.models import Api, Client, User
from tokensmith.core.ports import Conflict
from tokensmith.storage.compose import Database

NOW = 1_700_000_000


def api(identifier: str = "https://api.test", **kw: object) -> Api:
    values: dict[str, object] = {
        "identifier": identifier,
        "name": "Docs",
        "scopes": ("docs:read", "docs:write"),
        "created_at": NOW,
        "descriptions": {"docs:read": "Read your documents"},
    }
    values.update(kw)
    return Api(**values)  # type: ignore[arg-type]


def client(client_id: str = "app", **kw: object) -> Client:
    values: dict[str, object] = {
        "client_id": client_id,
        "name": "App",
        "client_type": "confidential",
        "redirect_uris": ("https://app.test/cb", "https://app.test/cb2"),
        "grant_types": ("authorization_code", "refresh_token"),
        "scopes": ("openid", "docs:read"),
        "apis": ("https://api.test", "https://other.test"),
        "token_endpoint_auth_method": "client_secret_basic",
        "secret_digest": "digest-1",
        "created_at": NOW,
    }
    values.update(kw)
    return Client(**values)  # type: ignore[arg-type]


def user(user_id: str = "u1", username: str = "alice", email: str | None = "alice@x.test") -> User:
    return User(
        id=user_id,
        username=username,
        email=email,
        email_verified=False,
        name="Alice",
        disabled=False,
        password_hash="$argon2id$hash",
        created_at=NOW,
        updated_at=NOW,
    )


async def test_api_round_trips_and_lists_by_identifier(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.apis.create(api("https://b.test"))
        await s.apis.create(api("https://a.test", scopes=(), descriptions={}))
    async with sql_db.transaction() as s:
        assert await s.apis.get("https://b.test") == api("https://b.test")
        assert await s.apis.get("https://none.test") is None
        assert [a.identifier for a in await s.apis.list()] == ["https://a.test", "https://b.test"]
        assert (await s.apis.list())[0].scopes == ()


async def test_api_duplicate_is_conflict_and_the_transaction_goes_on(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.apis.create(api())
        with pytest.raises(Conflict):
            await s.apis.create(api(name="Other"))
        await s.apis.create(api("https://c.test"))
    async with sql_db.transaction() as s:
        assert [a.name for a in await s.apis.list()] == ["Docs", "Docs"]


async def test_api_delete_reports_whether_it_existed(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.apis.create(api())
        assert await s.apis.delete("https://api.test") is True
        assert await s.apis.delete("https://api.test") is False
        assert await s.apis.get("https://api.test") is None


async def test_client_round_trips_every_field(sql_db: Database) -> None:
    full = client(
        "full",
        client_type="public",
        token_endpoint_auth_method="private_key_jwt",
        first_party=True,
        native=True,
        can_introspect=True,
        access_token_format="opaque",
        access_token_ttl=60,
        refresh_token_idle_ttl=600,
        refresh_token_absolute_ttl=6000,
        id_token_signed_response_alg="ES256",
        post_logout_redirect_uris=("https://app.test/bye",),
        jwks='{"keys": []}',
        jwks_uri="https://app.test/jwks",
        secret_digest=None,
    )
    async with sql_db.transaction() as s:
        await s.clients.create(full)
        await s.clients.create(client())
    async with sql_db.transaction() as s:
        assert await s.clients.get("full") == full
        assert await s.clients.get("app") == client()
        assert await s.clients.get("nobody") is None


async def test_client_duplicate_is_conflict(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.clients.create(client())
        with pytest.raises(Conflict):
            await s.clients.create(client(name="Again"))
        assert [c.name for c in await s.clients.list()] == ["App"]


async def test_client_list_set_secret_and_delete(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.clients.create(client("first", created_at=NOW))
        await s.clients.create(client("second", created_at=NOW + 1))
        assert [c.client_id for c in await s.clients.list()] == ["first", "second"]
        assert await s.clients.set_secret_digest("first", "digest-2", NOW + 5) is True
        assert await s.clients.set_secret_digest("nobody", "digest-2", NOW + 5) is False
    async with sql_db.transaction() as s:
        found = await s.clients.get("first")
        assert found is not None
        assert found.secret_digest == "digest-2"
        assert await s.clients.delete("first") is True
        assert await s.clients.delete("first") is False
        assert [c.client_id for c in await s.clients.list()] == ["second"]


async def test_user_found_by_username_or_email(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user())
        await s.users.create(user("u2", "bob", None))
    async with sql_db.transaction() as s:
        assert await s.users.get("u1") == user()
        assert await s.users.find_by_login("alice") == user()
        assert await s.users.find_by_login("alice@x.test") == user()
        assert await s.users.find_by_login("bob@x.test") is None
        assert await s.users.get("nobody") is None
        assert [u.username for u in await s.users.list()] == ["alice", "bob"]


async def test_user_duplicate_username_or_email_is_conflict(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user())
        with pytest.raises(Conflict):
            await s.users.create(user("u2", "alice", "other@x.test"))
        with pytest.raises(Conflict):
            await s.users.create(user("u3", "carol", "alice@x.test"))
        assert [u.id for u in await s.users.list()] == ["u1"]


async def test_user_updates_report_whether_the_user_exists(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user())
        assert await s.users.set_password_hash("u1", "$new", NOW + 1) is True
        assert await s.users.set_disabled("u1", True, NOW + 2) is True
        assert await s.users.set_profile(
            "u1", name="Alice B", email="ab@x.test", email_verified=True, now=NOW + 3
        )
        assert await s.users.set_password_hash("nobody", "$new", NOW) is False
        assert await s.users.set_disabled("nobody", True, NOW) is False
        assert not await s.users.set_profile(
            "nobody", name=None, email=None, email_verified=False, now=NOW
        )
    async with sql_db.transaction() as s:
        found = await s.users.get("u1")
        assert found is not None
        assert (found.password_hash, found.disabled, found.name) == ("$new", True, "Alice B")
        assert (found.email, found.email_verified, found.updated_at) == ("ab@x.test", True, NOW + 3)


async def test_user_profile_taking_another_users_email_is_conflict(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user())
        await s.users.create(user("u2", "bob", "bob@x.test"))
        with pytest.raises(Conflict):
            await s.users.set_profile(
                "u2", name="Bob", email="alice@x.test", email_verified=False, now=NOW
            )
        bob = await s.users.get("u2")
        assert bob is not None
        assert bob.email == "bob@x.test"


async def test_client_update_replaces_all_but_id_secret_and_creation(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.clients.create(client("app"))
        await s.clients.create(client("other"))
        changed = client(
            "app",
            name="App 2",
            redirect_uris=("https://app.test/new",),
            scopes=("openid",),
            apis=("https://other.test",),
            first_party=True,
            access_token_ttl=600,
            post_logout_redirect_uris=("https://app.test/bye",),
            secret_digest="ignored",
            created_at=NOW + 99,
        )
        assert await s.clients.update(changed, NOW + 10) is True
        assert await s.clients.update(client("nobody"), NOW + 10) is False
    async with sql_db.transaction() as s:
        found = await s.clients.get("app")
        assert found == replace(changed, secret_digest="digest-1", created_at=NOW)
        assert await s.clients.get("other") == client("other")


async def test_user_delete_reports_whether_it_existed(sql_db: Database) -> None:
    async with sql_db.transaction() as s:
        await s.users.create(user())
        await s.users.create(user("u2", "bob", None))
        assert await s.users.delete("u1") is True
        assert await s.users.delete("u1") is False
    async with sql_db.transaction() as s:
        assert await s.users.get("u1") is None
        assert [u.username for u in await s.users.list()] == ["bob"]
        await s.users.create(user("u3", "alice"))  # the username is free again
