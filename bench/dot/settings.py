"""Django settings of the django-oauth-toolkit peer (``bench/dot/``), read from the environment
the bench sets (never a deployment's settings: DEBUG off, but secrets made up per run).

    BENCH_DOT_DATABASE   sqlite:////path/db.sqlite3 or postgresql://user@host:port/name
    BENCH_DOT_RSA_KEY    path of the PEM RSA private key that signs id_tokens (RS256)
    BENCH_DOT_SECRET     Django's SECRET_KEY
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent


def _database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # the smoke test's database: writers wait for each other instead of failing
        options = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path[1:], "OPTIONS": options}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        # persistent connections, one per gunicorn thread (Django's CONN_MAX_AGE)
        "CONN_MAX_AGE": None,
    }


SECRET_KEY = os.environ["BENCH_DOT_SECRET"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.dot.urls"
WSGI_APPLICATION = "bench.dot.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": _database(os.environ["BENCH_DOT_DATABASE"])}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "bench.dot",
]
# what `django-admin startproject` gives, less the admin's messages and clickjacking headers
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
LOGIN_URL = "/accounts/login/"
LOGGING = {  # warnings and errors to stderr (the bench keeps a log per server)
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": Path(os.environ["BENCH_DOT_RSA_KEY"]).read_text(),
    "SCOPES": {"openid": "OpenID Connect", "read": "Read", "write": "Write"},
    "DEFAULT_SCOPES": ["read"],
    "PKCE_REQUIRED": True,
    # like tokensmith's bench server (TOKENSMITH_AUTHORIZATION_CODE_TTL=600): codes are
    # prepared before a round, not used at once
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 600,
}
