"""``tokensmith admin``: access to the admin API (``/admin/v1``, docs/admin-api.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.cli.app import JsonOpt, emit, group, load_settings, with_admin
from tokensmith.core.admin_access import ADMIN_SCOPES, admin_api_identifier

app = group("Access to the admin API (/admin/v1).")


@app.command("bootstrap")
def admin_bootstrap(
    name: Annotated[str, typer.Option(help="The client's name.")] = "tokensmith admin",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="An admin scope the client may get (repeatable; default: all of them: "
            + " ".join(ADMIN_SCOPES)
            + ")."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set up the admin API and a client for it.

    Registers the admin API (<issuer>/admin/v1) if missing, and a client_credentials client
    for it. Its secret is printed once."""
    created = with_admin(lambda a: a.bootstrap_admin(name=name, scopes=scope))
    issuer = load_settings().issuer
    client = created.client
    data = {
        "client_id": client.client_id,
        "client_secret": created.client_secret,
        "audience": admin_api_identifier(issuer),
        "scopes": list(client.scopes),
    }
    text = "\n".join(
        [
            f"client_id: {client.client_id}",
            f"client_secret: {created.client_secret}",
            "(the secret is shown once: store it now)",
            f"audience: {admin_api_identifier(issuer)}",
            f"scopes: {' '.join(client.scopes)}",
        ]
    )
    emit(data, as_json=as_json, text=text)
