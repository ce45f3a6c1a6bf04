"""Administration of a tokensmith database: APIs, clients, users and keys.

The service layer that the CLI (and a future admin API) share: :class:`Admin` runs each operation
in one transaction, :mod:`tokensmith.admin.views` turns its values into JSON-ready dicts.

    async with Admin(settings) as admin:
        api = await admin.create_api(identifier="https://api.example", scopes=["docs:read"])
"""

from tokensmith.admin.service import Admin, AdminError, grant_grace, invalidation_channel
from tokensmith.core.registration import ClientMetadata, NewClient

__all__ = [
    "Admin",
    "AdminError",
    "ClientMetadata",
    "NewClient",
    "grant_grace",
    "invalidation_channel",
]
