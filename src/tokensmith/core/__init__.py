"""The OAuth 2.1 / OpenID Connect protocol, pure: no FastAPI, SQLAlchemy, Redis or network I/O.

Routes turn HTTP into the values of this package and its results back into HTTP; stores turn its
values into rows. ``tests/test_architecture.py`` fails if this package imports a web or database
framework.
"""
