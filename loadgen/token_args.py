"""The users' tokens on the command line: ``--token-file``, ``--token-command``, ``--signing-key-file``.

``friends``, ``strangers`` and ``mixed`` (for its ``[friends]`` part) take one of the three
(:mod:`loadgen.user_tokens`). None is assumed: a run that needs tokens and was given no source
is refused, saying which options there are, before anything is sent; :func:`load_tokens`
loads them and has the API take two before the run starts.
"""

from __future__ import annotations

import argparse
import time

from geo_common.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from loadgen.targets import check_user_token
from loadgen.user_tokens import NEEDED, SigningKey, TokenCommand, TokenFile, TokenSource, UserTokensError

#: The lifetime of a token minted only to see that the API takes it, seconds.
CHECK_TTL_S = 60


def add_token_arguments(*parsers: argparse.ArgumentParser) -> None:
    """Add the token sources (one at most) and the signing key's claims to each command."""
    for parser in parsers:
        group = parser.add_argument_group("the simulated users' tokens (one of)")
        sources = group.add_mutually_exclusive_group()
        sources.add_argument(
            "--token-file",
            metavar="FILE",
            default=None,
            help="USER_ID TOKEN lines, one per simulated user (# comments)",
        )
        sources.add_argument(
            "--token-command",
            metavar="CMD",
            default=None,
            help="run once per simulated user, {user} replaced by its id; prints that user's token "
            '(e.g. "geo-token {user}")',
        )
        sources.add_argument(
            "--signing-key-file",
            metavar="FILE",
            default=None,
            help="local load tests: mint HS256 tokens with the key in FILE, the services' GEO_JWT_SECRET",
        )
        group.add_argument(
            "--token-issuer",
            metavar="ISS",
            default=None,
            help=f"with --signing-key-file: the tokens' iss, the services' GEO_JWT_ISSUER (default {DEFAULT_ISSUER})",
        )
        group.add_argument(
            "--token-audience",
            metavar="AUD",
            default=None,
            help=f"with --signing-key-file: the tokens' aud, the services' GEO_JWT_AUDIENCE (default {DEFAULT_AUDIENCE})",
        )


def token_source(args: argparse.Namespace) -> TokenSource | None:
    """The source the arguments name, not loaded yet; None when they name none.

    Raises:
        UserTokensError: ``--token-issuer`` or ``--token-audience`` without a signing key, or
            a malformed ``--token-command``.
    """
    if args.signing_key_file is None:
        for flag in ("--token-issuer", "--token-audience"):
            if getattr(args, flag[2:].replace("-", "_")) is not None:
                raise UserTokensError(f"{flag} goes with --signing-key-file: other tokens carry their own")
    if args.token_file is not None:
        return TokenFile(path=args.token_file)
    if args.token_command is not None:
        return TokenCommand(token_command=args.token_command)
    if args.signing_key_file is not None:
        return SigningKey(
            path=args.signing_key_file,
            issuer=args.token_issuer if args.token_issuer is not None else DEFAULT_ISSUER,
            audience=args.token_audience if args.token_audience is not None else DEFAULT_AUDIENCE,
        )
    return None


def required(source: TokenSource | None, command: str) -> TokenSource:
    """``source``, or the one-line refusal of a run that needs tokens and was given none.

    Raises:
        UserTokensError: ``source`` is None.
    """
    if source is None:
        raise UserTokensError(f"{command} acts as its simulated users and needs their tokens: {NEEDED}")
    return source


def load_tokens(auth: TokenSource, users: range, *, api: str | None, api_flag: str, label: str) -> TokenSource:
    """``auth`` loaded for every user of ``users``, once the API at ``api`` took the first and
    the last user's tokens as theirs (``GET /v1/me``); unchecked when there is no ``api``.

    Args:
        label: the scenario, for the line printed (``friends``).

    Raises:
        UserTokensError: the source cannot give every user a token.
        TargetError: the API refuses one of the two, or takes it as another user's.
    """
    started = time.monotonic()
    loaded = auth.load(users)
    if api is not None:
        for user_id in sorted({users[0], users[-1]}):
            token = loaded.token(user_id, CHECK_TTL_S)
            check_user_token(api, api_flag, user_id, token, source=loaded.describe(), hint=loaded.hint())
    checked = "taken by the API" if api is not None else f"not checked (no {api_flag})"
    print(
        f"{label}: tokens of {len(users)} users from {loaded.describe()} ({time.monotonic() - started:.1f} s), {checked}",
        flush=True,
    )
    return loaded
