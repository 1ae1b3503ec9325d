"""Who a bearer token names, and until when: one verification for the handshake and the
``auth`` frame, so a token refused at one is refused at the other.

The checks are :class:`geo_common.identity.Authenticator`'s (local tokens and an identity
provider's alike). A provider's subject seen for the first time by this process is mapped to
its user id on the PostgreSQL primary, through :class:`~geo_common.database.Database` and its
circuit breaker; a local token, or a subject seen before, needs no database at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo_common.database import Database
from geo_common.identity import Authenticator


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified token: its user (the internal id) and its expiry, Unix milliseconds."""

    user_id: int
    expires_at: int


class Verifier:
    """Verifies the tier's bearer tokens.

    Args:
        authenticator: the token checks and the mapping of subjects to user ids.
        db: the primary (a provider subject's first use may create its user).
    """

    def __init__(self, authenticator: Authenticator, db: Database) -> None:
        self._authenticator = authenticator
        self._db = db

    async def verify(self, token: str) -> Verified:
        """Check a token and say whose it is and until when.

        Args:
            token: the compact JWT.

        Raises:
            geo_common.provider_keys.KeysUnavailable: an identity provider's token, and its keys
                could not be loaded (the token may be fine: answer "try again").
            TokenError: anything wrong with the token, however malformed.
            DatabaseUnavailable: the primary did not answer a first-time subject's mapping.
        """
        claims, identity = await self._authenticator.identify(token, self._db)
        return Verified(identity.user_id, int(claims.expires_at * 1000))
