"""``tokensmith users``: user accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.admin.views import user_json
from tokensmith.cli.app import JsonOpt, emit, with_admin

app = typer.Typer(help="User accounts.", no_args_is_help=True)


@app.command("create")
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


@app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the users."""
    users = with_admin(lambda a: a.list_users())
    text = "\n".join(
        f"{u.id}  {u.username}  {u.email or ''}{'  (disabled)' if u.disabled else ''}"
        for u in users
    )
    emit([user_json(u) for u in users], as_json=as_json, text=text or "no users")


@app.command("update")
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


@app.command("disable")
def users_disable(login: Annotated[str, typer.Argument(help="Username, email or id.")]) -> None:
    """Disable a user: they can no longer log in."""
    with_admin(lambda a: a.set_disabled(login, True))
    typer.echo(f"disabled {login}")


@app.command("reset-mfa")
def users_reset_mfa(login: Annotated[str, typer.Argument(help="Username, email or id.")]) -> None:
    """Turn off a user's two-step verification (a lost authenticator and recovery codes)."""
    done = with_admin(lambda a: a.reset_mfa(login))
    typer.echo(f"two-step verification of {login} turned off" if done else f"{login} had none")


@app.command("set-password")
def users_set_password(
    login: Annotated[str, typer.Argument(help="Username, email or id.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Set a user's password."""
    with_admin(lambda a: a.set_password(login, password))
    typer.echo(f"password of {login} changed")
