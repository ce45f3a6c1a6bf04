"""Browser tests: Chromium's DevTools virtual authenticator (a platform passkey provider with
resident keys and user verification that answers without a person)."""

from __future__ import annotations

from playwright.sync_api import Page


def virtual_authenticator(page: Page) -> None:
    """Give ``page`` a CTAP2 authenticator: internal transport, resident keys (passkeys), user
    verification always passed, presence simulated."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
