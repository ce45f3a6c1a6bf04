"""``tokensmith users``: user accounts, their grants and sessions."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.admin import Admin
from tokensmith.admin.views import grant_json, invitation_json, session_json, user_json
from tokensmith.cli.app import (
    JsonOpt,
    PasswordOpt,
    PasswordStdinOpt,
    duration,
    emit,
    group,
    load_settings,
    read_password,
    table,
    when,
    with_admin,
)
from tokensmith.core.self_service import NewInvitation
from tokensmith.server.mail import Mailer, backend_for

app = group("User accounts, their grants and sign-in sessions.")

Login = Annotated[str, typer.Argument(help="Username, email or id.")]


@app.command("create")
def users_create(
    username: Annotated[str, typer.Option()],
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
    email: Annotated[str | None, typer.Option()] = None,
    email_verified: Annotated[bool, typer.Option()] = False,
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user. The password is asked for (hidden, twice) unless --password-stdin."""
    secret = read_password(password, password_stdin)
    user = with_admin(
        lambda a: a.create_user(
            username=username,
            password=secret,
            email=email,
            email_verified=email_verified,
            name=name,
        )
    )
    emit(user_json(user), as_json=as_json, text=f"created user {user.username} ({user.id})")


@app.command("invite")
def users_invite(
    email: Annotated[str, typer.Argument(help="The address to invite.")],
    name: Annotated[str | None, typer.Option(help="Their name, proposed on the form.")] = None,
    ttl: Annotated[
        str | None,
        typer.Option(help="Lifetime: seconds, or 90m, 12h, 7d; default: invitation_ttl (7 days)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Invite someone to create an account.

    The link is mailed to EMAIL by the configured e-mail backend and printed here: without an
    e-mail backend, or when the mail server refuses it, pass it on yourself. It works once,
    until it expires, and creates the account with this address, verified. A new invitation to
    the same address withdraws the previous one."""
    seconds = duration(ttl)
    settings = load_settings()

    async def invite(admin: Admin) -> tuple[NewInvitation, str]:
        new = await admin.invite(email, name=name, ttl=seconds)
        try:
            sent = await Mailer(settings, backend_for(settings)).send_now(new.notice)
        except Exception as exc:  # the invitation stands: its link is printed below
            return new, f"the message could not be sent ({type(exc).__name__}: {exc})"
        return new, "" if sent else "no e-mail backend is configured (TOKENSMITH_EMAIL_BACKEND)"

    new, problem = with_admin(invite)
    address = new.token.email
    if problem:
        typer.echo(f"warning: {problem}: pass the link on to {address} yourself", err=True)
    text = f"invited {address} until {when(new.token.expires_at)}"
    text += f"\n{'not mailed' if problem else 'mailed'}; the link: {new.link}"
    emit(
        {**invitation_json(new.token), "link": new.link, "mailed": not problem},
        as_json=as_json,
        text=text,
    )


@app.command("invitations")
def users_invitations(as_json: JsonOpt = False) -> None:
    """List the pending invitations.

    Pending: not used, withdrawn or expired yet."""
    invitations = with_admin(lambda a: a.list_invitations())
    text = table(
        ("email", "name", "invited", "expires"),
        [
            (i.email, i.data.get("name") or "-", when(i.created_at), when(i.expires_at))
            for i in invitations
        ],
        empty="no pending invitations",
    )
    emit([invitation_json(i) for i in invitations], as_json=as_json, text=text)


@app.command("revoke-invitation")
def users_revoke_invitation(
    email: Annotated[str, typer.Argument(help="The invited address.")],
) -> None:
    """Withdraw a pending invitation. Its link stops working."""
    with_admin(lambda a: a.revoke_invitation(email))
    typer.echo(f"withdrew the invitation to {email}")


@app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the users."""
    users = with_admin(lambda a: a.list_users())
    text = table(
        ("username", "email", "verified", "name", "status", "id"),
        [
            (
                u.username,
                u.email or "-",
                ("yes" if u.email_verified else "no") if u.email else "-",
                u.name or "-",
                "disabled" if u.disabled else "active",
                u.id,
            )
            for u in users
        ],
        empty="no users",
    )
    emit([user_json(u) for u in users], as_json=as_json, text=text)


@app.command("update")
def users_update(
    login: Login,
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    email: Annotated[str | None, typer.Option(help="A new email (unverified by default).")] = None,
    email_verified: Annotated[
        bool | None, typer.Option("--email-verified/--email-unverified")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's profile. Name, email, email_verified; the id (sub) never changes."""
    user = with_admin(
        lambda a: a.update_profile(login, name=name, email=email, email_verified=email_verified)
    )
    emit(user_json(user), as_json=as_json, text=f"updated {user.username}")


@app.command("disable")
def users_disable(login: Login) -> None:
    """Disable a user. They can no longer sign in; their sessions end, their grants are revoked."""
    user = with_admin(lambda a: a.set_disabled(login, True))
    typer.echo(f"disabled {user.username}")


@app.command("enable")
def users_enable(login: Login) -> None:
    """Enable a disabled user. They sign in anew; revoked grants stay revoked."""
    user = with_admin(lambda a: a.set_disabled(login, False))
    typer.echo(f"enabled {user.username}")


@app.command("delete")
def users_delete(login: Login) -> None:
    """Delete a user. Their sessions end, their grants are revoked and consents withdrawn; the
    audit log keeps their events."""
    user = with_admin(lambda a: a.delete_user(login))
    typer.echo(f"deleted user {user.username} ({user.id})")


@app.command("reset-mfa")
def users_reset_mfa(login: Annotated[str, typer.Argument(help="Username, email or id.")]) -> None:
    """Turn off a user's two-step verification.

    For a user who lost their authenticator, recovery codes or passkeys: all three are removed,
    and the password alone signs them in until they set one up again."""
    done = with_admin(lambda a: a.reset_mfa(login))
    typer.echo(f"two-step verification of {login} turned off" if done else f"{login} had none")


@app.command("set-password")
def users_set_password(
    login: Login,
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Set a user's password. Asked for, hidden and twice, unless --password-stdin; their
    sessions end and their grants are revoked."""
    secret = read_password(password, password_stdin)
    with_admin(lambda a: a.set_password(login, secret))
    typer.echo(f"password of {login} changed")


@app.command("grants")
def users_grants(login: Login, as_json: JsonOpt = False) -> None:
    """List a user's grants. What each client got in one authorization (revoked ones too)."""
    grants = with_admin(lambda a: a.list_grants(login))
    text = table(
        ("grant id", "client id", "api", "scopes", "granted", "revoked"),
        [
            (
                g.id,
                g.client_id,
                g.audience or "-",
                " ".join(g.scopes),
                when(g.created_at),
                when(g.revoked_at, none="no"),
            )
            for g in grants
        ],
        empty=f"no grants for {login}",
    )
    emit([grant_json(g) for g in grants], as_json=as_json, text=text)


@app.command("sessions")
def users_sessions(login: Login, as_json: JsonOpt = False) -> None:
    """List a user's live sign-in sessions at the server."""
    sessions = with_admin(lambda a: a.list_sessions(login))
    text = table(
        ("session id", "signed in", "expires", "methods"),
        [(s.digest[:16], when(s.auth_time), when(s.expires_at), " ".join(s.amr)) for s in sessions],
        empty=f"no sessions for {login}",
    )
    emit([session_json(s) for s in sessions], as_json=as_json, text=text)


@app.command("revoke")
def users_revoke(
    login: Login,
    grant: Annotated[
        str | None,
        typer.Option(help="Revoke only this grant (an id from `users grants`)."),
    ] = None,
) -> None:
    """Sign a user out everywhere. End every session and revoke every grant (every token issued
    from them stops working). With --grant: revoke only that grant."""
    if grant is not None:
        revoked = with_admin(lambda a: a.revoke_grant(login, grant))
        typer.echo(f"revoked grant {revoked.id} of client {revoked.client_id}")
        return
    sessions, grants = with_admin(lambda a: a.revoke_user(login))
    typer.echo(f"{login}: ended {sessions} session(s), revoked {grants} grant(s)")


@app.command("end-sessions")
def users_end_sessions(
    login: Login,
    session: Annotated[
        str | None,
        typer.Option(help="End only this session (its id from `users sessions --json`)."),
    ] = None,
) -> None:
    """Sign a user out of the server.

    Ends every session (or only --session). Their grants, and the tokens issued from them,
    stay (`users revoke` ends those too)."""
    if session is not None:
        with_admin(lambda a: a.end_session(login, session))
        typer.echo(f"ended session {session} of {login}")
        return
    ended = with_admin(lambda a: a.end_sessions(login))
    typer.echo(f"{login}: ended {ended} session(s)")
