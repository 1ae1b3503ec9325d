"""An identity provider's subjects and the internal user ids they map to, in PostgreSQL.

A provider names its users with opaque strings (``auth0|abc``, a Firebase uid, a Keycloak
UUID); geo's tables key users by a ``bigint``. The first time an (issuer, subject) pair is
seen it gets the next id of the ``identity_user_ids`` sequence and a ``users`` row, in one
statement; afterwards the same pair always gives the same id. Two processes seeing a new
subject at once agree on one id (the primary key decides; the loser reads the winner's).
"""

from __future__ import annotations

from geo_common.friends_db import Executor

_FIND = "SELECT user_id FROM identities WHERE issuer = $1 AND subject = $2"
# Both rows in one statement: the foreign key is checked at its end, when the user exists.
# A conflict inserts neither (ON CONFLICT leaves new_identity empty) and burns one number.
_CREATE = """
WITH new_identity AS (
    INSERT INTO identities (issuer, subject, user_id)
    VALUES ($1, $2, nextval('identity_user_ids'))
    ON CONFLICT (issuer, subject) DO NOTHING
    RETURNING user_id
), new_user AS (
    INSERT INTO users (id) SELECT user_id FROM new_identity
)
SELECT user_id FROM new_identity
"""


async def user_id_for(primary: Executor, issuer: str, subject: str) -> int:
    """The internal user id of a provider's subject, created (with its user) on first use.

    Args:
        primary: the primary database (a pool or a connection).
        issuer: the provider's ``iss``.
        subject: the provider's ``sub`` (1 to 255 characters, checked by the caller).

    Returns:
        The user id, the same for every call with this issuer and subject.
    """
    for statement in (_FIND, _CREATE, _FIND):
        user_id = await primary.fetchval(statement, issuer, subject)
        if user_id is not None:
            return int(user_id)
    # Unreachable: the second _FIND runs only after a conflict with a committed row.
    raise RuntimeError(f"no user id for a subject of issuer {issuer!r}")
