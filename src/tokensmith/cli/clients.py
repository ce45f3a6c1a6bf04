"""``tokensmith clients``: OAuth clients."""

from __future__ import annotations

from typing import Annotated, cast

import typer

from tokensmith.admin import ClientMetadata
from tokensmith.admin.views import client_json
from tokensmith.cli.app import JsonOpt, emit, fail, with_admin
from tokensmith.core.models import AuthMethod, ClientType

app = typer.Typer(help="OAuth clients.", no_args_is_help=True)


@app.command("create")
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
    metadata = ClientMetadata(
        name=name,
        client_type=ctype,
        redirect_uris=tuple(redirect_uri or ()),
        grant_types=tuple(grant or ()),
        scopes=tuple(scope or ()),
        apis=tuple(api or ()),
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
        post_logout_redirect_uris=tuple(post_logout_redirect_uri or ()),
    )
    created = with_admin(lambda a: a.create_client(metadata))
    data = client_json(created.client)
    data["client_secret"] = created.client_secret
    text = f"client_id: {created.client.client_id}"
    if created.client_secret:
        text += f"\nclient_secret: {created.client_secret}\n(shown once: store it now)"
    emit(data, as_json=as_json, text=text)


@app.command("list")
def clients_list(as_json: JsonOpt = False) -> None:
    """List the clients."""
    clients = with_admin(lambda a: a.list_clients())
    text = "\n".join(
        f"{c.client_id}  {c.client_type:12}  {c.name}  [{' '.join(c.apis) or 'no API'}]"
        for c in clients
    )
    emit([client_json(c) for c in clients], as_json=as_json, text=text or "no clients")


@app.command("show")
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


@app.command("rotate-secret")
def clients_rotate_secret(client_id: str, as_json: JsonOpt = False) -> None:
    """Replace a client's secret; the old one stops working at once."""
    secret = with_admin(lambda a: a.rotate_client_secret(client_id))
    emit(
        {"client_id": client_id, "client_secret": secret},
        as_json=as_json,
        text=f"client_secret: {secret}\n(shown once: store it now)",
    )


@app.command("delete")
def clients_delete(client_id: str) -> None:
    """Remove a client."""
    if not with_admin(lambda a: a.delete_client(client_id)):
        raise fail(f"no client {client_id}")
    typer.echo(f"deleted client {client_id}")
