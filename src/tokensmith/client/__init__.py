"""tokensmith client toolkit: "Login with GitHub, Google, or any OpenID Connect provider".

    auth = ClientAuth(
        ClientConfig(secret_key=..., base_url="https://app.example",
                     providers={"github": github(id, secret), "google": google(id, secret)}),
        store=SqlLoginStore(engine), http=httpx.AsyncClient(),
    )
    app.include_router(auth.router)

The parts (see ``docs/client.md``): :class:`LoginFlow` (start, callback, identity linking,
logout), :class:`AppSessions` (the app's own sessions), :class:`UpstreamTokenVault` (the
provider's tokens, sealed and refreshed) and the :class:`Provider` protocol that
:class:`GitHubProvider` and :class:`OIDCProvider` implement.

Deprecated names, importable for one more release but no longer in ``__all__``:
``ClientStore`` (now :class:`LoginStore`), ``SessionStore`` (now :class:`AppSessionStore`) and
``SqlClientStore`` (now :class:`SqlLoginStore`).
"""

from tokensmith.client.config import ClientConfig
from tokensmith.client.discovery import KeyResolver
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
from tokensmith.client.login import LoginFlow, LoginResult, link_by_provider_subject
from tokensmith.client.models import ExternalIdentity, FindOrCreateUser, UpstreamTokens
from tokensmith.client.pages import ErrorPage
from tokensmith.client.providers import (
    GitHubProvider,
    OIDCProvider,
    Provider,
    github,
    google,
    oidc,
)
from tokensmith.client.router import ClientAuth, create_auth_router
from tokensmith.client.sessions import ActiveSession, AppSessions
from tokensmith.client.sqlalchemy_store import SqlClientStore as SqlClientStore  # deprecated
from tokensmith.client.sqlalchemy_store import SqlLoginStore, create_all
from tokensmith.client.storage import (
    AppSessionStore,
    IdentityStore,
    LoginStore,
    TransactionStore,
    UpstreamTokenStore,
)
from tokensmith.client.storage import ClientStore as ClientStore  # deprecated
from tokensmith.client.storage import SessionStore as SessionStore  # deprecated
from tokensmith.client.upstream import ProviderAPI
from tokensmith.client.vault import UpstreamTokenVault

__all__ = [
    "ActiveSession",
    "AppSessionStore",
    "AppSessions",
    "CSRFError",
    "ClientAuth",
    "ClientConfig",
    "EmailNotVerified",
    "ErrorPage",
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
    "LoginFlow",
    "LoginResult",
    "LoginStore",
    "OIDCProvider",
    "Provider",
    "ProviderAPI",
    "ProviderError",
    "ProviderUnavailable",
    "ReloginRequired",
    "SqlLoginStore",
    "TemporaryFailure",
    "TransactionReplayed",
    "TransactionStore",
    "UnknownProvider",
    "UpstreamTokenStore",
    "UpstreamTokenVault",
    "UpstreamTokens",
    "create_all",
    "create_auth_router",
    "github",
    "google",
    "link_by_provider_subject",
    "oidc",
]

# Deprecated aliases (documented names of the previous release), not in __all__.
__deprecated__ = {
    "ClientStore": "LoginStore",
    "SessionStore": "AppSessionStore",
    "SqlClientStore": "SqlLoginStore",
}
