"""Where the SQL stores used to live, one module per concern now (``apis``, ``clients``,
``users``, ``codes``, ``grants``, ``tokens``, ``sessions``, ``interactions``, ``consents``,
``throttles``, ``assertion_jtis``) and their composition in ``tokensmith.storage.compose``.

Re-exports the old names for code written against this module; new code imports the modules.
"""

from __future__ import annotations

from tokensmith.storage.compose import Database, Ephemeral, RequestStores
from tokensmith.storage.sqlalchemy.apis import SqlApiStore
from tokensmith.storage.sqlalchemy.assertion_jtis import SqlAssertionJtiStore
from tokensmith.storage.sqlalchemy.clients import SqlClientStore, client_from_row, client_to_row
from tokensmith.storage.sqlalchemy.codes import SqlCodeStore
from tokensmith.storage.sqlalchemy.consents import SqlConsentStore
from tokensmith.storage.sqlalchemy.grants import SqlGrantStore
from tokensmith.storage.sqlalchemy.interactions import SqlInteractionStore
from tokensmith.storage.sqlalchemy.sessions import SqlSessionStore
from tokensmith.storage.sqlalchemy.throttles import SqlLoginFailureStore
from tokensmith.storage.sqlalchemy.tokens import SqlAccessTokenStore, SqlRefreshTokenStore
from tokensmith.storage.sqlalchemy.users import SqlUserStore

SqlStores = RequestStores
"""The old name of ``RequestStores`` (which holds Redis stores too when configured)."""

__all__ = [
    "Database",
    "Ephemeral",
    "RequestStores",
    "SqlAccessTokenStore",
    "SqlApiStore",
    "SqlAssertionJtiStore",
    "SqlClientStore",
    "SqlCodeStore",
    "SqlConsentStore",
    "SqlGrantStore",
    "SqlInteractionStore",
    "SqlLoginFailureStore",
    "SqlRefreshTokenStore",
    "SqlSessionStore",
    "SqlStores",
    "SqlUserStore",
    "client_from_row",
    "client_to_row",
]
