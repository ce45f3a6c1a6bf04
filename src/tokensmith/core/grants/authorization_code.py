"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).

- The code is consumed atomically, so of concurrent redemptions exactly one wins.
- A second redemption fails with ``invalid_grant``; when it comes from the code's client with
  the right verifier it revokes everything issued from the code (RFC 6749 §4.1.2, RFC 9700
  §4.2.4), committed although the request fails. Other replays are only refused (OAuth 2.1
  §4.1.3: an invalid replay must not let its sender revoke the real client's tokens).
- The code is bound to the client, the redirect URI and the PKCE challenge; any failed check burns
  it (the consumption is committed), so a wrong verifier cannot be retried.
- A ``resource`` sent with the code must be the one it was issued for, still one of the client's
  APIs (RFC 8707 §2.2): otherwise ``invalid_target``, checked before the code is consumed when the
  client may not use that resource at all.
- A code issued before an event that ended its user's sessions or grants (a password changed or
  reset, the account disabled or deleted, "sign out everywhere", a second factor reset) is
  refused: the event renewed the user's security stamp (``ports.SecurityStampStore``), which
  the code recorded when issued. The stamp is read locked, so a redemption running at the same
  time as the event is either refused or makes a grant that the event then revokes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokensmith.core import audit, pkce
from tokensmith.core.authorize import check_grant_scopes
from tokensmith.core.errors import InvalidGrant, InvalidRequest, InvalidTarget
from tokensmith.core.models import (
    GRANT_AUTHORIZATION_CODE,
    AuthorizationCode,
    Client,
    Grant,
    TokenResponse,
)
from tokensmith.core.ports import StaleStamp
from tokensmith.core.secrets import digest

if TYPE_CHECKING:
    from tokensmith.core.context import ServerContext
    from tokensmith.core.grants import TokenRequest
    from tokensmith.core.issuance import TokenIssuer
    from tokensmith.core.ports import Stores

INVALID_CODE = "the authorization code is invalid, expired or already used"


class AuthorizationCodeGrant:
    grant_type = GRANT_AUTHORIZATION_CODE
    parameters = frozenset({"code", "redirect_uri", "code_verifier", "resource"})
    audit_event = audit.TOKEN_ISSUED

    async def handle(
        self,
        request: TokenRequest,
        client: Client,
        *,
        context: ServerContext,
        issuer: TokenIssuer,
        stores: Stores,
    ) -> TokenResponse:
        value = request.get("code")
        if value is None:
            raise InvalidRequest("code is required")
        resource = request.get("resource")
        if resource is not None and not client.might_use(resource):
            raise InvalidTarget("this client may not request tokens for the requested resource")
        now = context.now()
        code_digest = digest(value, context.pepper)
        code = await stores.codes.consume(code_digest, now)
        if code is None:
            used = await stores.codes.get(code_digest)
            if used is not None:
                # A second redemption by the code's own client, with its verifier, means the code
                # leaked or was replayed: revoke what it issued (RFC 6749 §4.1.2). A replay by
                # anyone else proves nothing and must not let them revoke the real client's tokens.
                if used.client_id == client.client_id and pkce.verifier_matches(
                    request.get("code_verifier"), used.code_challenge
                ):
                    await issuer.revoke_family(
                        stores,
                        used.grant_id,
                        event=audit.CODE_REPLAYED,
                        client_id=client.client_id,
                        user_id=used.user_id,
                        tombstone=grant_of(used, now),
                    )
                raise InvalidGrant(INVALID_CODE, detail=f"replay of a used code ({used.grant_id})")
            raise InvalidGrant(INVALID_CODE, detail="unknown code")
        try:
            if code.client_id != client.client_id:
                raise InvalidGrant(INVALID_CODE, detail="code issued to another client")
            if code.expires_at <= now:
                raise InvalidGrant(INVALID_CODE, detail="code expired")
            sent_redirect = request.get("redirect_uri")
            redirect_checked = code.redirect_uri_sent or sent_redirect is not None
            if redirect_checked and sent_redirect != code.redirect_uri:
                raise InvalidGrant("redirect_uri does not match the authorization request")
            pkce.check_verifier(request.get("code_verifier"), code.code_challenge)
            await context.check_token_audience(client, code.audience, resource, stores)
            await check_grant_scopes(context, client, code.audience, code.scopes, stores)
            # The grant and its tokens are written together (``TokenIssuer.for_grant``); a
            # grant that a replay of this code stored revoked meanwhile (the consumption may
            # be committed by itself, or codes live in Redis) is kept, and the tokens are born
            # revoked. Exactly one redemption still gets an answer.
            # Last, and only while the user's stamp is still the code's, held until this
            # transaction ends: an event that ended the user's sessions or grants since the
            # code was issued (a password reset, ...) changed it; one running now waits, then
            # revokes the grant made here.
            try:
                return await issuer.for_grant(
                    client,
                    grant_of(code, now),
                    stores,
                    new_grant=True,
                    nonce=code.nonce,
                    security_stamp=code.security_stamp,
                )
            except StaleStamp:
                raise InvalidGrant(
                    INVALID_CODE, detail="the user's access was ended since"
                ) from None
        except (InvalidGrant, InvalidTarget):
            await stores.commit()  # the code stays burnt
            raise


def grant_of(code: AuthorizationCode, now: int) -> Grant:
    """The grant an authorization code becomes when it is redeemed."""
    return Grant(
        id=code.grant_id,
        client_id=code.client_id,
        user_id=code.user_id,
        scopes=code.scopes,
        audience=code.audience,
        auth_time=code.auth_time,
        created_at=now,
        session_id=code.session_id,
        amr=code.amr,
    )
