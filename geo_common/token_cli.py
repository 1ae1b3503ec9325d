"""``geo-token USER_ID [--role user|owner|admin]``: print a signed local token.

The token is HS256 with ``GEO_JWT_SECRET``, ``iss`` ``GEO_JWT_ISSUER`` and ``aud``
``GEO_JWT_AUDIENCE``; it acts as user ``USER_ID`` with the role given. It is how operators act
as owners and admins even when users sign in with an identity provider (whose tokens are
always plain users).
"""

from __future__ import annotations

import argparse
import sys

from geo_common.settings import SettingsError, load_settings
from geo_common.tokens import Role, TokenError, mint_token
from geo_common.version import add_version_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="geo-token",
        description="Print an HS256 bearer token signed with GEO_JWT_SECRET (iss GEO_JWT_ISSUER, aud GEO_JWT_AUDIENCE).",
    )
    add_version_argument(parser)
    parser.add_argument("user_id", type=int, help="the user id (positive integer), the token's subject")
    parser.add_argument(
        "--role", choices=[r.value for r in Role], default=Role.USER.value, help="role claim (default: user)"
    )
    parser.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default: GEO_JWT_TTL_S)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        ttl = args.ttl if args.ttl is not None else settings.jwt_ttl_s
        if ttl < 1:
            raise TokenError("--ttl must be at least 1 second")
        if ttl > settings.jwt_max_lifetime_s:
            # The services would refuse the token: say so now rather than at its first use.
            raise TokenError(f"the lifetime {ttl} s exceeds GEO_JWT_MAX_LIFETIME_S={settings.jwt_max_lifetime_s}")
        token = mint_token(
            settings.jwt_secret,
            args.user_id,
            Role(args.role),
            ttl_s=ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        print(token)
    except (SettingsError, TokenError) as exc:
        print(f"geo-token: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
