"""``django-admin bench_setup OUT``: migrate, then create the bench user and applications and
write their credentials to ``OUT`` (JSON).

django-oauth-toolkit allows one grant type per application: ``cc`` (client_credentials) and
``web`` (authorization_code, which also gets refresh tokens), each confidential, with the client
secret hashed by DOT's default hasher (Django's PBKDF2, 1,000,000 iterations) and again with one
iteration (``*_cheap``): the default makes every client authentication cost ~0.3 s of CPU.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand
from oauth2_provider.models import Application

from bench.dot import PASSWORD, REDIRECT, USERNAME


class OneIterationPBKDF2(PBKDF2PasswordHasher):
    """Django's PBKDF2-SHA256 with one iteration: the stored hash names its iteration count,
    so the default hasher verifies it (cheaply); for the bench only."""

    iterations = 1


class Command(BaseCommand):
    help = "Create the bench user and applications; write their credentials as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("out")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)
        created: dict[str, dict[str, str]] = {}
        grants = {
            "cc": Application.GRANT_CLIENT_CREDENTIALS,
            "web": Application.GRANT_AUTHORIZATION_CODE,
        }
        for kind, grant in grants.items():
            for cheap in (False, True):
                name = f"{kind}_cheap" if cheap else kind
                secret = secrets.token_urlsafe(32)
                stored = make_password(secret, hasher=OneIterationPBKDF2()) if cheap else secret
                app = Application.objects.create(
                    name=f"bench {name}",
                    client_type=Application.CLIENT_CONFIDENTIAL,
                    authorization_grant_type=grant,
                    redirect_uris=REDIRECT if kind == "web" else "",
                    algorithm=Application.RS256_ALGORITHM,
                    client_secret=stored,  # hashed on save when not already a hash
                )
                created[name] = {"client_id": app.client_id, "client_secret": secret}
        Path(options["out"]).write_text(json.dumps(created))
