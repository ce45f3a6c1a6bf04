"""tokensmith client toolkit: "Login with GitHub, Google, or any OpenID Connect provider".

    auth = ClientAuth(
        ClientConfig(secret_key=..., base_url="https://app.example",
                     providers={"github": github(id, secret), "google": google(id, secret)}),
        store=SqlClientStore(engine), http=httpx.AsyncClient(),
    )
    app.include_router(auth.router)

See ``docs/client.md``.
"""

from tokensmith.client.config import ClientConfig
from tokensmith.client.errors import (
    CSRFError,
    EmailNotVerified,
    InvalidIdToken,
    InvalidState,
    IssuerMismatch,
    LoginCancelled,
    LoginError,
    ProviderError,
    ProviderUnavailable,
    ReloginRequired,
    TemporaryFailure,
    TransactionReplayed,
    UnknownProvider,
)
from tokensmith.client.login import (
    ActiveSession,
    KeyResolver,
    LoginResult,
    LoginService,
    link_by_provider_subject,
)
from tokensmith.client.models import ExternalIdentity, FindOrCreateUser, UpstreamTokens
from tokensmith.client.providers import (
    GitHubProvider,
    OIDCProvider,
    Provider,
    github,
    google,
    oidc,
)
from tokensmith.client.router import ClientAuth, create_auth_router
from tokensmith.client.sqlalchemy_store import SqlClientStore, create_all
from tokensmith.client.storage import (
    ClientStore,
    IdentityStore,
    SessionStore,
    TransactionStore,
    UpstreamTokenStore,
)
from tokensmith.client.upstream import ProviderAPI

__all__ = [
    "ActiveSession",
    "CSRFError",
    "ClientAuth",
    "ClientConfig",
    "ClientStore",
    "EmailNotVerified",
    "ExternalIdentity",
    "FindOrCreateUser",
    "GitHubProvider",
    "IdentityStore",
    "InvalidIdToken",
    "InvalidState",
    "IssuerMismatch",
    "KeyResolver",
    "LoginCancelled",
    "LoginError",
    "LoginResult",
    "LoginService",
    "OIDCProvider",
    "Provider",
    "ProviderAPI",
    "ProviderError",
    "ProviderUnavailable",
    "ReloginRequired",
    "SessionStore",
    "SqlClientStore",
    "TemporaryFailure",
    "TransactionReplayed",
    "TransactionStore",
    "UnknownProvider",
    "UpstreamTokenStore",
    "UpstreamTokens",
    "create_all",
    "create_auth_router",
    "github",
    "google",
    "link_by_provider_subject",
    "oidc",
]
