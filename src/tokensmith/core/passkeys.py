"""Passkeys (WebAuthn Level 2/3, via py_webauthn): registration, a second factor after the
password, and passwordless sign-in with discoverable credentials.

The relying party is the issuer: RP ID = the issuer's host, the only accepted origin = the
issuer's origin (scheme, host, port). A response signed for another origin or RP ID (a
phishing site) is refused by the library's checks of ``clientDataJSON.origin`` and of the RP ID
hash in the authenticator data.

Challenges: 32 random bytes, stored only as an HMAC digest among the single-use links of
``AccountTokenStore`` (purposes ``passkey_*``), expiring after :data:`CHALLENGE_TTL` seconds,
and bound: a registration challenge to the account's session, a sign-in challenge to the
interaction and the browser, a second-factor challenge to the user who passed the password.
The challenge a response signed is looked up and consumed atomically before anything else is
checked, so a response works once, in the browser it was asked for.

Signature counter (WebAuthn §6.1.1, §7.2 step 21): a counter that does not advance on a validly
signed assertion (either value non-zero) is a sign the authenticator was cloned; the assertion
is refused and ``passkey.counter_regression`` audited. The counter is compared and set in one
atomic update (``PasskeyStore.use``), so two uses with one counter value cannot both pass.

``amr`` (RFC 8176): ``swk``. With attestation ``none`` (what the server asks for: no vendor
tracking, every authenticator accepted) the server cannot know whether the key lives in
hardware, so it does not claim ``hwk``. After a password a passkey adds ``swk`` and ``mfa``.
A passwordless sign-in requires user verification (a PIN or biometric on the authenticator):
NIST SP 800-63B §5.1.9 counts such a multi-factor cryptographic authenticator as two factors,
so its session's ``amr`` is ``swk`` and ``mfa``; its ``acr`` is
:data:`core.mfa.ACR_MULTI_FACTOR`. A passkey without user verification signs in nobody alone.
"""

from __future__ import annotations

import binascii
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from tokensmith.core import audit
from tokensmith.core.audit import AuditEvent, AuditSink
from tokensmith.core.models import AccountToken, PasskeyCredential
from tokensmith.core.ports import Stores
from tokensmith.core.secrets import digest, new_id

CHALLENGE_TTL = 300
"""Seconds a ceremony's challenge may be answered."""
TIMEOUT_MS = CHALLENGE_TTL * 1000
REGISTER = "passkey_register"
SIGN_IN = "passkey_sign_in"
SECOND_FACTOR = "passkey_mfa"
MAX_RESPONSE = 16384
"""Characters of a response accepted (a credential JSON; attestation ``none`` keeps it small)."""
MAX_PASSKEYS = 20
NAME_LENGTH = 64
AMR = ("swk",)
AMR_PASSWORDLESS = ("swk", "mfa")


def rp_of(issuer: str) -> tuple[str, str]:
    """The RP ID (the host) and the origin of an issuer URL."""
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    return host, f"{parts.scheme}://{parts.netloc}"


def clean_name(name: str) -> str:
    """A passkey's name as shown: printable, single spaces, at most 64 characters."""
    text = " ".join("".join(c for c in name if c.isprintable()).split())
    return text[:NAME_LENGTH] or "Passkey"


def challenge_of(response: str) -> str | None:
    """The base64url challenge a credential JSON's ``clientDataJSON`` carries; ``None`` when
    it is not one."""
    try:
        credential = json.loads(response)
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        challenge = client_data["challenge"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return challenge if isinstance(challenge, str) and 0 < len(challenge) <= 256 else None


def credential_id_of(response: str) -> str | None:
    try:
        value = json.loads(response)["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 1400 else None


def user_handle_of(response: str) -> str | None:
    try:
        handle = json.loads(response)["response"].get("userHandle")
        return base64url_to_bytes(handle).decode() if isinstance(handle, str) else None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified assertion: the credential, and whether the user was verified."""

    credential: PasskeyCredential
    user_verified: bool


class Passkeys:
    """The passkey ceremonies, and the passkey as a second factor (``core.mfa.SecondFactor``)."""

    name = "passkey"
    amr = AMR
    fallback = False

    def __init__(self, *, issuer: str, rp_name: str, pepper: bytes, audit: AuditSink) -> None:
        self.rp_id, self.origin = rp_of(issuer)
        self.rp_name = rp_name
        self.pepper = pepper
        self.audit = audit

    # -- challenges ---------------------------------------------------------------------------

    async def _challenge(
        self, stores: Stores, purpose: str, user_id: str | None, binding: str, now: int
    ) -> bytes:
        challenge = secrets.token_bytes(32)
        await stores.account_tokens.create(
            AccountToken(
                digest=digest(bytes_to_base64url(challenge), self.pepper),
                purpose=purpose,
                email="",
                user_id=user_id,
                created_at=now,
                expires_at=now + CHALLENGE_TTL,
                data={"binding": binding},
            )
        )
        return challenge

    async def _take(
        self, stores: Stores, purpose: str, response: str, binding: str | None, now: int
    ) -> tuple[bytes, AccountToken] | None:
        """Consume the challenge ``response`` signed: it must be unused, unexpired, of this
        ceremony and (``binding``) of this browser."""
        challenge = challenge_of(response)
        if challenge is None:
            return None
        token = await stores.account_tokens.consume(digest(challenge, self.pepper), purpose, now)
        if token is None:
            return None
        if binding is not None and not hmac.compare_digest(
            token.data.get("binding", "").encode(), binding.encode()
        ):
            return None
        try:
            return base64url_to_bytes(challenge), token
        except (ValueError, binascii.Error):
            return None

    # -- registration -------------------------------------------------------------------------

    async def registration_options(
        self,
        stores: Stores,
        *,
        user_id: str,
        username: str,
        binding: str,
        now: int,
    ) -> str:
        """The options for ``navigator.credentials.create`` (JSON): a discoverable credential
        (resident key required, for passwordless sign-in), user verification preferred,
        attestation ``none``, the user's passkeys excluded."""
        existing = await stores.passkeys.list_for_user(user_id)
        challenge = await self._challenge(stores, REGISTER, user_id, binding, now)
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_id=user_id.encode(),
            user_name=username,
            challenge=challenge,
            timeout=TIMEOUT_MS,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id))
                for c in existing
            ],
        )
        return str(options_to_json(options))

    async def register(
        self,
        stores: Stores,
        *,
        user_id: str,
        response: str,
        name: str,
        binding: str,
        now: int,
        address: str,
    ) -> PasskeyCredential | None:
        """Verify a ``navigator.credentials.create`` response for the challenge of this
        session and store the passkey; ``None`` when it does not verify (audited)."""
        taken = await self._take(stores, REGISTER, response[:MAX_RESPONSE], binding, now)
        if taken is None or taken[1].user_id != user_id:
            self._failed(user_id, address, now, "challenge")
            return None
        if len(await stores.passkeys.list_for_user(user_id)) >= MAX_PASSKEYS:
            self._failed(user_id, address, now, "too_many")
            return None
        try:
            verified = verify_registration_response(
                credential=response,
                expected_challenge=taken[0],
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                require_user_verification=False,
            )
            transports = _transports(response)
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            self._failed(user_id, address, now, type(exc).__name__)
            return None
        credential = PasskeyCredential(
            id=new_id(),
            user_id=user_id,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            name=clean_name(name),
            created_at=now,
            transports=transports,
            backup_eligible=verified.credential_device_type == "multi_device",
            user_verified=verified.user_verified,
        )
        if not await stores.passkeys.add(credential):
            self._failed(user_id, address, now, "known_credential")
            return None
        self.audit(
            AuditEvent(
                audit.PASSKEY_REGISTERED,
                now,
                user_id=user_id,
                address=address,
                detail={"passkey": credential.id, "name": credential.name},
            )
        )
        return credential

    # -- assertions ---------------------------------------------------------------------------

    async def authentication_options(
        self,
        stores: Stores,
        *,
        purpose: str,
        user_id: str | None,
        binding: str,
        now: int,
    ) -> str:
        """The options for ``navigator.credentials.get`` (JSON). Passwordless (no user): no
        credential list (discoverable credentials), user verification required. Second factor:
        the user's passkeys, user verification preferred."""
        challenge = await self._challenge(stores, purpose, user_id, binding, now)
        allow: list[PublicKeyCredentialDescriptor] = []
        if user_id is not None:
            allow = [
                PublicKeyCredentialDescriptor(
                    id=base64url_to_bytes(c.credential_id),
                    transports=[
                        AuthenticatorTransport(t)
                        for t in c.transports
                        if t in AuthenticatorTransport._value2member_map_
                    ]
                    or None,
                )
                for c in await stores.passkeys.list_for_user(user_id)
            ]
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=TIMEOUT_MS,
            allow_credentials=allow,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if user_id is None
                else UserVerificationRequirement.PREFERRED
            ),
        )
        return str(options_to_json(options))

    async def verify_assertion(
        self,
        stores: Stores,
        *,
        purpose: str,
        response: str,
        binding: str | None,
        user_id: str | None,
        now: int,
        address: str,
        require_user_verification: bool,
    ) -> Assertion | None:
        """Verify a ``navigator.credentials.get`` response: the challenge (consumed), the
        credential (of ``user_id`` when given; of the user handle it names otherwise), origin,
        RP ID, signature, user verification when required, and the counter (atomically).
        ``None`` when anything fails (audited)."""
        response = response[:MAX_RESPONSE]
        taken = await self._take(stores, purpose, response, binding, now)
        if taken is None or (user_id is not None and taken[1].user_id != user_id):
            self._failed(user_id, address, now, "challenge")
            return None
        credential_id = credential_id_of(response)
        credential = await stores.passkeys.get(credential_id) if credential_id else None
        if credential is None or (user_id is not None and credential.user_id != user_id):
            self._failed(user_id, address, now, "unknown_credential")
            return None
        if user_id is None and user_handle_of(response) != credential.user_id:
            self._failed(credential.user_id, address, now, "user_handle")
            return None
        try:
            verified = verify_authentication_response(
                credential=response,
                expected_challenge=taken[0],
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=base64url_to_bytes(credential.public_key),
                # the counter is checked below, after the signature, and atomically
                credential_current_sign_count=0,
                require_user_verification=require_user_verification,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            self._failed(credential.user_id, address, now, type(exc).__name__)
            return None
        new_count = verified.new_sign_count
        if (new_count or credential.sign_count) and new_count <= credential.sign_count:
            self._regression(credential, new_count, address, now)
            return None
        if not await stores.passkeys.use(credential.credential_id, new_count, now):
            self._regression(credential, new_count, address, now)
            return None
        self.audit(
            AuditEvent(
                audit.PASSKEY_USED,
                now,
                user_id=credential.user_id,
                address=address,
                detail={"passkey": credential.id, "purpose": purpose},
            )
        )
        return Assertion(credential, verified.user_verified)

    # -- the second factor --------------------------------------------------------------------

    async def is_enrolled(self, stores: Stores, user_id: str) -> bool:
        return bool(await stores.passkeys.list_for_user(user_id))

    async def verify(self, stores: Stores, user_id: str, response: str, *, now: int) -> bool:
        """A second-factor assertion for ``user_id`` (its challenge was issued to them by the
        second step, ``second_factor_options``)."""
        done = await self.verify_assertion(
            stores,
            purpose=SECOND_FACTOR,
            response=response,
            binding=None,
            user_id=user_id,
            now=now,
            address="",
            require_user_verification=False,
        )
        return done is not None

    # -- audit --------------------------------------------------------------------------------

    def _failed(self, user_id: str | None, address: str, now: int, reason: str) -> None:
        self.audit(
            AuditEvent(
                audit.PASSKEY_FAILED,
                now,
                user_id=user_id,
                address=address or None,
                detail={"reason": reason[:64]},
            )
        )

    def _regression(
        self, credential: PasskeyCredential, new_count: int, address: str, now: int
    ) -> None:
        self.audit(
            AuditEvent(
                audit.PASSKEY_COUNTER_REGRESSION,
                now,
                user_id=credential.user_id,
                address=address or None,
                detail={
                    "passkey": credential.id,
                    "stored": str(credential.sign_count),
                    "received": str(new_count),
                },
            )
        )


def _transports(response: str) -> tuple[str, ...]:
    data: Any = json.loads(response).get("response", {}).get("transports") or []
    if not isinstance(data, list):
        return ()
    return tuple(t for t in data if isinstance(t, str) and t.isalnum() and len(t) <= 20)[:8]
