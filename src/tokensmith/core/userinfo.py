"""The UserInfo response (OpenID Connect Core §5.3, §5.4): claims by scope.

``sub`` always; ``profile``: name, preferred_username, updated_at; ``email``: email,
email_verified. Only for access tokens that carry ``openid``.
"""

from __future__ import annotations

from tokensmith.core.models import User


def claims_for(user: User, scopes: tuple[str, ...]) -> dict[str, object]:
    claims: dict[str, object] = {"sub": user.id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        claims["updated_at"] = user.updated_at
        if user.name:
            claims["name"] = user.name
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims
