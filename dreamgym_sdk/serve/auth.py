"""Bearer-token authentication (constant-time comparison) and per-token rate limiting.

A request's identity is the index of the token it presented (``token-0``, ``token-1``, ...), never the
token itself, so identities can be logged and used as session owners.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence

__all__ = ["ANONYMOUS", "Authenticator", "RateLimiter"]

ANONYMOUS = "anonymous"
"""The identity of every request when the server runs with ``allow_unauthenticated``."""


class Authenticator:
    """Maps an ``Authorization`` header to an identity, comparing tokens in constant time.

    Args:
        tokens: the accepted tokens (clear text; kept only as bytes in memory).
        allow_unauthenticated: requests without an ``Authorization`` header get :data:`ANONYMOUS`
            (a header that is present must still hold a valid token).
    """

    def __init__(self, tokens: Sequence[str], *, allow_unauthenticated: bool = False) -> None:
        self._tokens = [t.encode() for t in tokens]
        self.allow_unauthenticated = allow_unauthenticated

    def identify(self, authorization: str | None) -> str | None:
        """The identity for the header value, or ``None`` when it is missing or wrong."""
        if not authorization:
            return ANONYMOUS if self.allow_unauthenticated else None
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        presented = credentials.strip().encode()
        match = -1
        for index, token in enumerate(self._tokens):  # compare with every token: no early exit
            if hmac.compare_digest(presented, token):
                match = index
        return f"token-{match}" if match >= 0 else None


class RateLimiter:
    """A token bucket per identity: ``rate`` requests per second on average, up to ``burst`` at once.

    Args:
        rate: refill rate in requests per second; ``None`` disables limiting.
        burst: bucket size.
    """

    def __init__(self, rate: float | None, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, identity: str) -> float | None:
        """Take one request from ``identity``'s bucket; ``None`` if allowed, else seconds to wait."""
        rate = self.rate
        if rate is None:
            return None
        now = time.monotonic()
        level, last = self._buckets.get(identity, (self.burst, now))
        level = min(self.burst, level + (now - last) * rate)
        if level >= 1.0:
            self._buckets[identity] = (level - 1.0, now)
            return None
        self._buckets[identity] = (level, now)
        return (1.0 - level) / rate
