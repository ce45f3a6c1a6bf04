"""Administration of a tokensmith database: APIs, clients, users and keys.

The service layer that the CLI and the admin API (``/admin/v1``, ``server/routes/admin.py``)
share: :class:`Admin` runs each operation in one transaction, :mod:`tokensmith.admin.views` turns
its values into JSON-ready dicts. A refusal is an :class:`AdminError` (:class:`AdminNotFound`,
:class:`AdminConflict`) whose message says what to do.

    async with Admin(settings) as admin:
        api = await admin.create_api(identifier="https://api.example", scopes=["docs:read"])
"""

from tokensmith.admin.service import (
    Admin,
    AdminConflict,
    AdminError,
    AdminNotFound,
    grant_grace,
    invalidation_channel,
)
from tokensmith.core.registration import ClientMetadata, NewClient

__all__ = [
    "Admin",
    "AdminConflict",
    "AdminError",
    "AdminNotFound",
    "ClientMetadata",
    "NewClient",
    "grant_grace",
    "invalidation_channel",
]
