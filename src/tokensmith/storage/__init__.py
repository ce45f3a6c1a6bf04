"""Storage behind one Protocol per concern (``interfaces``); SQLAlchemy implementation in
``tokensmith.storage.sqlalchemy``."""
