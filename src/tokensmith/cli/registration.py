"""``tokensmith registration``: dynamic client registration (RFC 7591) — initial access tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.cli.app import (
    JsonOpt,
    duration,
    emit,
    group,
    load_settings,
    table,
    when,
    with_admin,
)

app = group("Dynamic client registration (RFC 7591).")
token_app = group("Initial access tokens, for registration = token.")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    expires: Annotated[
        str | None,
        typer.Option(help="Lifetime: seconds, or with a unit (90m, 12h, 30d); default: never."),
    ] = None,
    uses: Annotated[
        int | None, typer.Option(help="Registrations it allows; default: any number.", min=1)
    ] = None,
    note: Annotated[str, typer.Option(help="Who or what it is for (listed).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an initial access token (shown once).

    Only its digest is stored. A client registers with it as `Authorization: Bearer <token>`
    on POST /register."""
    seconds = duration(expires)
    token, record = with_admin(
        lambda a: a.create_initial_access_token(expires_in=seconds, uses=uses, note=note)
    )
    mode = load_settings().registration
    text = token
    if mode != "token":
        text += f"\n(note: TOKENSMITH_REGISTRATION is {mode!r}; tokens are used only when 'token')"
    emit(
        {
            "token": token,
            "id": record.digest[:12],
            "expires_at": record.expires_at,
            "uses_left": record.uses_left,
            "note": record.note,
        },
        as_json=as_json,
        text=text,
    )


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List initial access tokens (by id: the start of their digest)."""
    tokens = with_admin(lambda a: a.list_initial_access_tokens())
    rows = [
        (
            t.digest[:12],
            when(t.created_at),
            when(t.expires_at, none="never"),
            "any" if t.uses_left is None else str(t.uses_left),
            t.note or "-",
        )
        for t in tokens
    ]
    emit(
        [
            {
                "id": t.digest[:12],
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "uses_left": t.uses_left,
                "note": t.note,
            }
            for t in tokens
        ],
        as_json=as_json,
        text=table(("id", "created", "expires", "uses left", "note"), rows, empty="no tokens"),
    )


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke an initial access token.

    Its id is in `registration token list`."""
    with_admin(lambda a: a.revoke_initial_access_token(token_id))
    typer.echo(f"revoked initial access token {token_id}")
