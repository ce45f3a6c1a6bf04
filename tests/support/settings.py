"""Settings values shared by the tests: the test issuer and a password hash cheap enough for
tests (the production cost is measured in bench/)."""

from __future__ import annotations

ISSUER = "https://as.test"

FAST_HASH = {
    "password_hash_time_cost": 1,
    "password_hash_memory_cost": 1024,
    "password_hash_parallelism": 1,
}
