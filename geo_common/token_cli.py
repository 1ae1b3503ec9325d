"""``geo-token USER_ID [--role user|owner|admin]``: print a signed development token."""

from __future__ import annotations

import argparse
import sys

from geo_common.settings import SettingsError, load_settings
from geo_common.tokens import Role, TokenError, mint_token
from geo_common.version import add_version_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="geo-token", description="Print an HS256 bearer token signed with GEO_JWT_SECRET."
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
        print(mint_token(settings.jwt_secret, args.user_id, Role(args.role), ttl_s=ttl))
    except (SettingsError, TokenError) as exc:
        print(f"geo-token: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
