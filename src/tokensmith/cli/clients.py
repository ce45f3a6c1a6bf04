"""``tokensmith clients``: OAuth clients."""

from __future__ import annotations

from typing import Annotated, Any, cast

import typer

from tokensmith.admin import ClientMetadata
from tokensmith.admin.views import client_json
from tokensmith.cli.app import JsonOpt, emit, fail, group, table, when, with_admin, words
from tokensmith.core.models import AuthMethod, Client, ClientType

app = group("OAuth clients.")


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
    mfa_required: Annotated[
        bool, typer.Option(help="Signing in to this client needs a second factor.")
    ] = False,
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
    jwks = read_jwks(jwks)
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
        mfa_required=mfa_required,
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


def read_jwks(jwks: str | None) -> str | None:
    """``--jwks``: the JSON itself, or ``@file``."""
    if jwks is None or not jwks.startswith("@"):
        return jwks
    try:
        with open(jwks[1:], encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise fail(f"cannot read {jwks[1:]}: {exc.strerror}") from None


@app.command("list")
def clients_list(as_json: JsonOpt = False) -> None:
    """List the clients."""
    clients = with_admin(lambda a: a.list_clients())
    text = table(
        ("client id", "type", "name", "grants", "apis"),
        [
            (c.client_id, c.client_type, c.name, " ".join(c.grant_types), words(c.apis))
            for c in clients
        ],
        empty="no clients",
    )
    emit([client_json(c) for c in clients], as_json=as_json, text=text)


def describe(client: Client) -> str:
    """``clients show`` for people: one readable line per field (no Python values)."""

    def ttl(seconds: int | None) -> str:
        return f"{seconds} s" if seconds is not None else "server default"

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    rows = [
        ("client id", client.client_id),
        ("name", client.name),
        ("type", client.client_type + (", native app" if client.native else "")),
        ("authentication", client.token_endpoint_auth_method),
        ("grants", words(client.grant_types)),
        ("redirect URIs", words(client.redirect_uris, none="none")),
        ("post-logout URIs", words(client.post_logout_redirect_uris, none="none")),
        ("scopes", words(client.scopes, none="none")),
        ("APIs", words(client.apis, none="none (OpenID Connect scopes only)")),
        ("default API", client.default_api or "none"),
        (
            "first party",
            yes(client.first_party) + (" (no consent page)" if client.first_party else ""),
        ),
        ("may introspect", yes(client.can_introspect)),
        ("MFA required", yes(client.mfa_required)),
        ("access tokens", client.access_token_format),
        ("access token TTL", ttl(client.access_token_ttl)),
        ("refresh idle TTL", ttl(client.refresh_token_idle_ttl)),
        ("refresh absolute TTL", ttl(client.refresh_token_absolute_ttl)),
        ("ID token alg", client.id_token_signed_response_alg),
        ("created", when(client.created_at)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k + ':':{width + 1}} {v}" for k, v in rows)


@app.command("show")
def clients_show(client_id: str, as_json: JsonOpt = False) -> None:
    """Show one client."""
    client = with_admin(lambda a: a.require_client(client_id))
    emit(client_json(client), as_json=as_json, text=describe(client))


@app.command("update")
def clients_update(
    client_id: str,
    name: Annotated[
        str | None, typer.Option(help="A new name (shown on the consent page).")
    ] = None,
    add_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Add a redirect URI (repeatable).")
    ] = None,
    remove_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Remove a redirect URI (repeatable).")
    ] = None,
    add_post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Add a post-logout redirect URI (repeatable).")
    ] = None,
    remove_post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Remove a post-logout redirect URI (repeatable).")
    ] = None,
    add_scope: Annotated[list[str] | None, typer.Option(help="Allow a scope (repeatable).")] = None,
    remove_scope: Annotated[
        list[str] | None,
        typer.Option(
            help="Stop allowing a scope (repeatable): the client's grants and tokens that hold "
            "it are revoked, its consents to it withdrawn."
        ),
    ] = None,
    add_api: Annotated[
        list[str] | None,
        typer.Option(help="Add an API by identifier (repeatable; appended after the default)."),
    ] = None,
    remove_api: Annotated[
        list[str] | None,
        typer.Option(
            help="Remove an API (repeatable): the client's grants and tokens for it are "
            "revoked, its consents to it withdrawn."
        ),
    ] = None,
    add_grant: Annotated[
        list[str] | None, typer.Option(help="Add a grant type (repeatable).")
    ] = None,
    remove_grant: Annotated[
        list[str] | None, typer.Option(help="Remove a grant type (repeatable).")
    ] = None,
    first_party: Annotated[
        bool | None,
        typer.Option("--first-party/--third-party", help="Skip the consent page or not."),
    ] = None,
    introspect: Annotated[
        bool | None,
        typer.Option("--introspect/--no-introspect", help="May introspect other clients' tokens."),
    ] = None,
    mfa_required: Annotated[
        bool | None,
        typer.Option(
            "--mfa-required/--no-mfa-required",
            help="Signing in to this client needs a second factor or not.",
        ),
    ] = None,
    token_format: Annotated[str | None, typer.Option(help="Access tokens: jwt or opaque.")] = None,
    access_token_ttl: Annotated[
        int | None, typer.Option(help="Seconds; 0 returns to the server default.", min=0)
    ] = None,
    refresh_idle_ttl: Annotated[
        int | None, typer.Option(help="Seconds; 0 returns to the server default.", min=0)
    ] = None,
    refresh_absolute_ttl: Annotated[
        int | None, typer.Option(help="Seconds; 0 returns to the server default.", min=0)
    ] = None,
    id_token_alg: Annotated[str | None, typer.Option(help="RS256, ES256 or EdDSA.")] = None,
    jwks: Annotated[
        str | None, typer.Option(help="private_key_jwt: a new public JWKS, as JSON or @file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a client. Validated as at registration; its id and secret stay."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if first_party is not None:
        changes["first_party"] = first_party
    if introspect is not None:
        changes["can_introspect"] = introspect
    if mfa_required is not None:
        changes["mfa_required"] = mfa_required
    if token_format is not None:
        if token_format not in ("jwt", "opaque"):
            raise fail("--token-format must be jwt or opaque")
        changes["access_token_format"] = token_format
    for field, value in (
        ("access_token_ttl", access_token_ttl),
        ("refresh_token_idle_ttl", refresh_idle_ttl),
        ("refresh_token_absolute_ttl", refresh_absolute_ttl),
    ):
        if value is not None:
            changes[field] = value or None
    if id_token_alg is not None:
        changes["id_token_signed_response_alg"] = id_token_alg
    if jwks is not None:
        changes["jwks"] = read_jwks(jwks)
    add = {
        k: v
        for k, v in (
            ("redirect_uris", add_redirect_uri),
            ("post_logout_redirect_uris", add_post_logout_redirect_uri),
            ("scopes", add_scope),
            ("apis", add_api),
            ("grant_types", add_grant),
        )
        if v
    }
    remove = {
        k: v
        for k, v in (
            ("redirect_uris", remove_redirect_uri),
            ("post_logout_redirect_uris", remove_post_logout_redirect_uri),
            ("scopes", remove_scope),
            ("apis", remove_api),
            ("grant_types", remove_grant),
        )
        if v
    }
    if not (changes or add or remove):
        raise typer.BadParameter("nothing to change: give at least one option (see --help)")
    client = with_admin(
        lambda a: a.update_client(client_id, changes=changes, add=add, remove=remove)
    )
    emit(
        client_json(client), as_json=as_json, text=f"updated client {client_id}\n{describe(client)}"
    )


@app.command("rotate-secret")
def clients_rotate_secret(client_id: str, as_json: JsonOpt = False) -> None:
    """Replace a client's secret. The old one stops working at once."""
    secret = with_admin(lambda a: a.rotate_client_secret(client_id))
    emit(
        {"client_id": client_id, "client_secret": secret},
        as_json=as_json,
        text=f"client_secret: {secret}\n(shown once: store it now)",
    )


@app.command("delete")
def clients_delete(client_id: str) -> None:
    """Remove a client."""
    with_admin(lambda a: a.delete_client(client_id))
    typer.echo(f"deleted client {client_id}")
