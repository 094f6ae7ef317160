"""Secrets shown once and stored only as a hash.

Keys and tokens are 256 random bits, so a single SHA-256 is enough: there is nothing to
brute-force that a slow password hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets

ACCESS_TOKEN_PREFIX = "eth_pat_"
HARNESS_KEY_PREFIX = "eth_app_"
TICKET_PREFIX = "eth_tkt_"
# Query parameter names that may carry a secret (compared lowercased, after decoding):
# the access log redacts their values, and the realtime URL refuses them in disguise.
SECRET_PARAMS = frozenset({"token", "ticket", "access_token", "api_key", "key", "secret"})


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[: len(ACCESS_TOKEN_PREFIX) + 4]
