"""``tokensmith``: serve, demo, doctor, db, apis, clients, users, keys.

Settings come from ``TOKENSMITH_*`` variables (and ``.env``), so scripts can drive a fresh server
with no file edits. A refused operation prints one line on stderr and exits 1; bad arguments exit 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from tokensmith.admin import Admin, AdminError
from tokensmith.core.keys import KeyLoadError
from tokensmith.core.models import Api, AuthMethod, Client, ClientType, User
from tokensmith.settings import Settings

if TYPE_CHECKING:
    from tokensmith.server.protocols import HttpParser

T = TypeVar("T")

app = typer.Typer(
    help="tokensmith: an OAuth 2.1 and OpenID Connect authorization server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
apis_app = typer.Typer(help="APIs (resource servers) and their scopes.", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth clients.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(apis_app, name="apis")
app.add_typer(clients_app, name="clients")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"tokensmith {version('tokensmith')}")
        except PackageNotFoundError:
            raise fail("tokensmith is not installed (no package metadata)") from None
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the installed tokensmith version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    pass


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise fail(f"invalid setting {where}: {first['msg']}") from None


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(make())
    except (AdminError, KeyLoadError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach the database: {exc}") from None
    except SQLAlchemyError as exc:
        # A bad URL, an unknown dialect, refused credentials, a file that is not a database.
        reason = getattr(exc, "orig", None) or exc
        raise fail(f"cannot use the database: {first_line(reason)}") from None
    except ImportError as exc:
        raise fail(f"cannot use the database: its driver is not installed ({exc})") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def with_admin(action: Callable[[Admin], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        async with Admin(settings) as admin:
            return await action(admin)

    return run(go)


def emit(data: object, *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def api_json(api: Api) -> dict[str, object]:
    return {
        "identifier": api.identifier,
        "name": api.name,
        "scopes": list(api.scopes),
        "descriptions": api.descriptions,
    }


def client_json(client: Client) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "type": client.client_type,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "apis": list(client.apis),
        "default_api": client.default_api,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "first_party": client.first_party,
        "native": client.native,
        "introspect": client.can_introspect,
        "access_token_format": client.access_token_format,
    }


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "disabled": user.disabled,
    }


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# -- serve / db ------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    loop: Annotated[
        str,
        typer.Option(help="Event loop: auto (uvloop when installed), uvloop or asyncio."),
    ] = "auto",
    http: Annotated[
        str,
        typer.Option(help="HTTP parser: auto (httptools when installed), httptools or h11."),
    ] = "auto",
) -> None:
    """Run the authorization server (migrates the schema first)."""
    import uvicorn

    if loop not in ("auto", "uvloop", "asyncio"):
        raise fail("--loop must be auto, uvloop or asyncio")
    if http not in ("auto", "httptools", "h11"):
        raise fail("--http must be auto, httptools or h11")

    settings = load_settings()
    from tokensmith.server.app import create_app
    from tokensmith.server.observability import configure_logging
    from tokensmith.server.protocols import http_protocol

    run(lambda: _check_start(settings))
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    proxy: dict[str, Any] = {
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "server_header": False,
        "loop": loop,
        # the parser's protocol with the request-head limits (431, 408 while the head arrives)
        "http": http_protocol(
            cast("HttpParser", http),
            max_header_bytes=settings.max_header_bytes,
            max_header_fields=settings.max_header_fields,
            header_read_timeout=settings.header_read_timeout,
        ),
    }
    if workers > 1:
        uvicorn.run(
            "tokensmith.server.factory:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            **proxy,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        **proxy,
    )


async def _check_start(settings: Settings) -> None:
    """Migrate, and refuse to start (one clear line) when the signing keys cannot be read."""
    async with Admin(settings) as admin:
        await admin.list_keys()


@app.command()
def demo(
    folder: Annotated[
        str, typer.Option("--dir", help="Where the demo keeps its databases and secrets.")
    ] = "tokensmith-demo",
    port: Annotated[
        int,
        typer.Option(
            help="The authorization server's port; the CloudDocs web app, API and SPA use the "
            "next three.",
            min=1,
            max=65532,
        ),
    ] = 8000,
) -> None:
    """Start the CloudDocs demo: the authorization server, the CloudDocs API, web app and SPA.

    On an empty folder it creates the SQLite databases, signing keys, a demo user and the clients;
    later runs reuse them. Ctrl-C (or SIGTERM) stops everything. The CloudDocs apps ship with
    tokensmith: an installed package is enough, no source checkout.
    """
    from tokensmith.demo.servers import DemoError, run_demo

    try:
        run_demo(Path(folder), port, echo=typer.echo)
    except DemoError as exc:
        raise fail(str(exc)) from None
    except (AdminError, KeyLoadError) as exc:
        raise fail(str(exc)) from None


async def _upgrade(settings: Settings) -> None:
    async with Admin(settings):
        pass


@app.command()
def doctor(
    url: Annotated[
        str | None,
        typer.Option(
            help="Also check the server running at this URL, e.g. https://auth.example.com."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the configuration (and with --url a running server): exit 1 on any finding."""
    from tokensmith.doctor import diagnose

    settings = load_settings()
    report = asyncio.run(diagnose(settings, url=url))
    typer.echo(report.as_json() if as_json else report.as_text())
    if not report.ok:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date."""
    settings = load_settings()
    run(lambda: _upgrade(settings))
    typer.echo("database schema is up to date")


@db_app.command("prune")
def db_prune(
    batch: Annotated[int, typer.Option(help="Rows per delete.", min=1)] = 1000,
    max_batches: Annotated[int, typer.Option(help="Batches per table per run.", min=1)] = 100,
) -> None:
    """Delete expired codes, sessions, login transactions, tokens, unused grants, and audit
    events older than TOKENSMITH_AUDIT_RETENTION_DAYS (365; 0 keeps them forever)."""
    days = load_settings().audit_retention_days
    report = with_admin(lambda a: a.prune(batch=batch, max_batches=max_batches))
    for table, count in report.deleted.items():
        if table == "ts_audit_events":
            typer.echo(f"{table}: {count} (older than {days} days)")
        elif count:
            typer.echo(f"{table}: {count}")
    if not days:
        typer.echo("ts_audit_events: kept forever (audit_retention_days is 0)")
    typer.echo(
        f"pruned {report.total} row(s)" + ("" if report.complete else "; more remain: run it again")
    )


# -- apis ------------------------------------------------------------------------------------


@apis_app.command("create")
def apis_create(
    identifier: Annotated[str, typer.Option(help="The API's identifier URI (the token aud).")],
    scope: Annotated[
        list[str], typer.Option(help="A scope the API defines; NAME or NAME=description.")
    ],
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an API (resource server) and its scopes."""
    names = [s.split("=", 1)[0] for s in scope]
    descriptions = {s.split("=", 1)[0]: s.split("=", 1)[1] for s in scope if "=" in s}
    api = with_admin(
        lambda a: a.create_api(
            identifier=identifier, scopes=names, name=name, descriptions=descriptions
        )
    )
    emit(api_json(api), as_json=as_json, text=f"created API {api.identifier}")


@apis_app.command("list")
def apis_list(as_json: JsonOpt = False) -> None:
    """List the registered APIs."""
    apis = with_admin(lambda a: a.list_apis())
    text = "\n".join(f"{a.identifier}  {' '.join(a.scopes)}" for a in apis) or "no APIs"
    emit([api_json(a) for a in apis], as_json=as_json, text=text)


@apis_app.command("delete")
def apis_delete(identifier: str) -> None:
    """Remove an API."""
    if not with_admin(lambda a: a.delete_api(identifier)):
        raise fail(f"no API {identifier}")
    typer.echo(f"deleted API {identifier}")


# -- clients ---------------------------------------------------------------------------------


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="Shown on the consent page.")],
    client_type: Annotated[
        str, typer.Option("--type", help="confidential or public.")
    ] = "confidential",
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="An exact redirect URI (repeatable).")
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option(help="authorization_code, client_credentials or refresh_token (repeatable)."),
    ] = None,
    scope: Annotated[list[str] | None, typer.Option(help="An allowed scope (repeatable).")] = None,
    api: Annotated[
        list[str] | None,
        typer.Option(
            help="Identifier of an API the client may get tokens for (repeatable; the first is "
            "its default, used when a request names no resource)."
        ),
    ] = None,
    first_party: Annotated[bool, typer.Option(help="Skip the consent page.")] = False,
    native: Annotated[bool, typer.Option(help="A native app: loopback redirects on any port.")] = (
        False
    ),
    introspect: Annotated[bool, typer.Option(help="May introspect other clients' tokens.")] = (
        False
    ),
    auth_method: Annotated[
        str | None,
        typer.Option(help="client_secret_basic (default), client_secret_post or private_key_jwt."),
    ] = None,
    jwks: Annotated[
        str | None, typer.Option(help="private_key_jwt: the public JWKS, as JSON or @file.")
    ] = None,
    token_format: Annotated[str, typer.Option(help="Access tokens: jwt or opaque.")] = "jwt",
    access_token_ttl: Annotated[int | None, typer.Option(help="Seconds.", min=30)] = None,
    refresh_idle_ttl: Annotated[int | None, typer.Option(help="Seconds.", min=30)] = None,
    refresh_absolute_ttl: Annotated[int | None, typer.Option(help="Seconds.", min=30)] = None,
    id_token_alg: Annotated[str, typer.Option(help="RS256, ES256 or EdDSA.")] = "RS256",
    post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Where RP-initiated logout may return (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a client. A confidential client's secret is printed once."""
    if client_type not in ("confidential", "public"):
        raise fail("--type must be confidential or public")
    ctype: ClientType = "confidential" if client_type == "confidential" else "public"
    methods = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
    if auth_method is not None and auth_method not in methods:
        raise fail(f"--auth-method must be one of {', '.join(methods)}")
    if token_format not in ("jwt", "opaque"):
        raise fail("--token-format must be jwt or opaque")
    if jwks is not None and jwks.startswith("@"):
        try:
            with open(jwks[1:], encoding="utf-8") as fh:
                jwks = fh.read()
        except OSError as exc:
            raise fail(f"cannot read {jwks[1:]}: {exc.strerror}") from None
    created = with_admin(
        lambda a: a.create_client(
            name=name,
            client_type=ctype,
            redirect_uris=redirect_uri or (),
            grant_types=grant or (),
            scopes=scope or (),
            apis=api or (),
            first_party=first_party,
            native=native,
            can_introspect=introspect,
            token_endpoint_auth_method=cast(AuthMethod | None, auth_method),
            jwks=jwks,
            access_token_format="opaque" if token_format == "opaque" else "jwt",
            access_token_ttl=access_token_ttl,
            refresh_token_idle_ttl=refresh_idle_ttl,
            refresh_token_absolute_ttl=refresh_absolute_ttl,
            id_token_signed_response_alg=id_token_alg,
            post_logout_redirect_uris=post_logout_redirect_uri or (),
        )
    )
    data = client_json(created.client)
    data["client_secret"] = created.client_secret
    text = f"client_id: {created.client.client_id}"
    if created.client_secret:
        text += f"\nclient_secret: {created.client_secret}\n(shown once: store it now)"
    emit(data, as_json=as_json, text=text)


@clients_app.command("list")
def clients_list(as_json: JsonOpt = False) -> None:
    """List the clients."""
    clients = with_admin(lambda a: a.list_clients())
    text = "\n".join(
        f"{c.client_id}  {c.client_type:12}  {c.name}  [{' '.join(c.apis) or 'no API'}]"
        for c in clients
    )
    emit([client_json(c) for c in clients], as_json=as_json, text=text or "no clients")


@clients_app.command("show")
def clients_show(client_id: str, as_json: JsonOpt = False) -> None:
    """Show one client."""
    client = with_admin(lambda a: a.get_client(client_id))
    if client is None:
        raise fail(f"no client {client_id}")
    data = client_json(client)
    lines = [
        f"{k}: {' '.join(v) if isinstance(v, list) else v}"
        for k, v in data.items()
        if k != "default_api"
    ]
    emit(data, as_json=as_json, text="\n".join(lines))


@clients_app.command("rotate-secret")
def clients_rotate_secret(client_id: str, as_json: JsonOpt = False) -> None:
    """Replace a client's secret; the old one stops working at once."""
    secret = with_admin(lambda a: a.rotate_client_secret(client_id))
    emit(
        {"client_id": client_id, "client_secret": secret},
        as_json=as_json,
        text=f"client_secret: {secret}\n(shown once: store it now)",
    )


@clients_app.command("delete")
def clients_delete(client_id: str) -> None:
    """Remove a client."""
    if not with_admin(lambda a: a.delete_client(client_id)):
        raise fail(f"no client {client_id}")
    typer.echo(f"deleted client {client_id}")


# -- users -----------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    email: Annotated[str | None, typer.Option()] = None,
    email_verified: Annotated[bool, typer.Option()] = False,
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user."""
    user = with_admin(
        lambda a: a.create_user(
            username=username,
            password=password,
            email=email,
            email_verified=email_verified,
            name=name,
        )
    )
    emit(user_json(user), as_json=as_json, text=f"created user {user.username} ({user.id})")


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the users."""
    users = with_admin(lambda a: a.list_users())
    text = "\n".join(
        f"{u.id}  {u.username}  {u.email or ''}{'  (disabled)' if u.disabled else ''}"
        for u in users
    )
    emit([user_json(u) for u in users], as_json=as_json, text=text or "no users")


@users_app.command("update")
def users_update(
    login: Annotated[str, typer.Argument(help="Username, email or id.")],
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    email: Annotated[str | None, typer.Option(help="A new email (unverified by default).")] = None,
    email_verified: Annotated[
        bool | None, typer.Option("--email-verified/--email-unverified")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's profile (name, email, email_verified); the id (sub) never changes."""
    user = with_admin(
        lambda a: a.update_profile(login, name=name, email=email, email_verified=email_verified)
    )
    emit(user_json(user), as_json=as_json, text=f"updated {user.username}")


@users_app.command("disable")
def users_disable(login: Annotated[str, typer.Argument(help="Username, email or id.")]) -> None:
    """Disable a user: they can no longer log in."""
    with_admin(lambda a: a.set_disabled(login, True))
    typer.echo(f"disabled {login}")


@users_app.command("set-password")
def users_set_password(
    login: Annotated[str, typer.Argument(help="Username, email or id.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Set a user's password."""
    with_admin(lambda a: a.set_password(login, password))
    typer.echo(f"password of {login} changed")


# -- keys ------------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List the signing keys."""
    keys = with_admin(lambda a: a.list_keys())
    data = [
        {
            "kid": k.kid,
            "alg": k.alg,
            "created_at": k.created_at,
            "activates_at": k.activates_at,
            "retired_at": k.retired_at,
            "expires_at": k.expires_at,
        }
        for k in keys
    ]
    text = "\n".join(f"{k.kid}  {k.alg:6}  {'retired' if k.retired_at else 'active'}" for k in keys)
    emit(data, as_json=as_json, text=text or "no keys (they are created when the server starts)")


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[
        str | None, typer.Option(help="ES256, EdDSA or RS256 (default: signing_alg).")
    ] = None,
    publish_ahead: Annotated[
        int | None,
        typer.Option(help="Seconds before the new key signs (default: key_publish_ahead).", min=0),
    ] = None,
) -> None:
    """Add a signing key: published at once, signing after the publish-ahead delay."""
    key = with_admin(lambda a: a.rotate_key(alg, publish_ahead=publish_ahead))
    typer.echo(f"new key {key.kid} ({key.alg}) signs from {key.activates_at} (unix time)")


@keys_app.command("prune")
def keys_prune() -> None:
    """Remove retired keys whose tokens have all expired."""
    count = with_admin(lambda a: a.prune_keys())
    typer.echo(f"removed {count} expired key(s)")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
