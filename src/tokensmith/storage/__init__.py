"""Storage behind the Protocols of ``tokensmith.core.ports``: SQLAlchemy Core (SQLite and
PostgreSQL) in ``tokensmith.storage.sqlalchemy``, one module per concern; Redis for the
short-lived concerns in ``tokensmith.storage.redis``; ``tokensmith.storage.compose`` decides
which of the two holds each concern."""
