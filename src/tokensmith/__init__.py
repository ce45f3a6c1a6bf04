"""tokensmith: OAuth 2.1 and OpenID Connect for FastAPI.

Subpackages: ``tokensmith.server`` (authorization server), ``tokensmith.resource`` (resource-server
toolkit), ``tokensmith.client`` (client toolkit), ``tokensmith.testing`` (pytest plugin).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
