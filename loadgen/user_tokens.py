"""Where the simulated users' bearer tokens come from, as any client's would: given to the run.

``geo-loadgen friends`` acts as thousands of users, each with their own token. It reads no
server settings and no environment for them; one of three sources is named on its command
line:

* :class:`TokenFile` (``--token-file FILE``): a file of ``USER_ID TOKEN`` lines, one per
  simulated user, made beforehand (by ``geo-token`` in a loop, an identity provider's test
  users...);
* :class:`TokenCommand` (``--token-command CMD``): a command run once per simulated user, its
  ``{user}`` replaced by the user id, which prints that user's token;
* :class:`SigningKey` (``--signing-key-file FILE``, with ``--token-issuer`` and
  ``--token-audience``): the HS256 key the services sign local tokens with, for local load
  tests only; the tokens are minted here.

A source is first named (its options, checked on their own), then :meth:`load`-ed once in the
command's own process, before the run: the file read, the commands run, the key read. The
loaded source travels with the options to every worker process and hands out tokens there.

The key and the tokens never reach a report or a message: the fields that hold them are named
as secrets are (``key``, ``tokens``, ``token_command``; :mod:`loadgen.redact`), and the
messages here name a user, a line number or a path, never what was read (of a failing token
command, its last line on stderr, with anything like a token or a URL's password taken out).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from geo_common.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER, Role, TokenError, mint_token
from loadgen.redact import plain

#: What ``{user}`` in a ``--token-command`` is replaced by.
USER_FIELD = "{user}"
#: The longest a ``--token-command`` may take for one user, seconds.
COMMAND_TIMEOUT_S = 30.0
#: Token commands run at once.
COMMAND_CONCURRENCY = 4
#: What to say when a run that needs tokens was given none.
NEEDED = (
    "pass --token-file FILE (USER_ID TOKEN lines), --token-command CMD (prints the token of user {user}) "
    "or, for a local load test, --signing-key-file FILE (the key the services sign with)"
)


class UserTokensError(ValueError):
    """A token source that cannot give every user a token; the message is one line, secret-free."""


class TokenSource(Protocol):
    """Where the users' tokens come from (the three kinds of this module)."""

    def describe(self) -> str:
        """The source as the command line names it, for messages (``--token-file tokens.txt``)."""
        ...

    def hint(self) -> str:
        """What to check when the API refuses a token from this source."""
        ...

    def load(self, users: range) -> TokenSource:
        """This source, ready to give a token to each of ``users``.

        Raises:
            UserTokensError: it cannot, and why.
        """
        ...

    def token(self, user_id: int, ttl_s: int) -> str:
        """User ``user_id``'s token, valid ``ttl_s`` seconds when it is minted here (a
        loaded source only).

        Raises:
            UserTokensError: this source has none for that user.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    """Tokens minted here, HS256 with a key read from ``path`` (local load tests only)."""

    path: str
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    key: str = field(default="", repr=False)

    def describe(self) -> str:
        return f"--signing-key-file {self.path}"

    def hint(self) -> str:
        return (
            "is it the key the services sign with (their GEO_JWT_SECRET), and are --token-issuer "
            f"{self.issuer!r} and --token-audience {self.audience!r} their GEO_JWT_ISSUER and GEO_JWT_AUDIENCE?"
        )

    def load(self, users: range) -> SigningKey:
        del users  # any user's token can be minted
        key = _read(self.path, "--signing-key-file").strip()
        if not key:
            raise UserTokensError(f"--signing-key-file {self.path} is empty")
        return replace(self, key=key)

    def token(self, user_id: int, ttl_s: int) -> str:
        if not self.key:
            raise UserTokensError(f"{self.describe()} was not read")
        try:
            return mint_token(self.key, user_id, Role.USER, ttl_s=ttl_s, issuer=self.issuer, audience=self.audience)
        except TokenError as exc:
            raise UserTokensError(str(exc)) from None


@dataclass(frozen=True, kw_only=True)
class TokenFile:
    """Tokens read from ``path``: ``USER_ID TOKEN`` lines; blank lines and ``#`` comments skipped."""

    path: str
    tokens: Mapping[int, str] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        return f"--token-file {self.path}"

    def hint(self) -> str:
        return "were its tokens issued by this deployment, for these user ids, and are they still valid?"

    def load(self, users: range) -> TokenFile:
        tokens: dict[int, str] = {}
        where: dict[int, int] = {}
        for number, line in enumerate(_read(self.path, "--token-file").splitlines(), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split()
            at = f"--token-file {self.path} line {number}"
            if len(fields) != 2:
                raise UserTokensError(f"{at}: expected USER_ID TOKEN, got {len(fields)} field(s)")
            user_id = _user_id(fields[0], at)
            if user_id in where:
                raise UserTokensError(f"{at}: user {user_id} has a token already (line {where[user_id]})")
            where[user_id], tokens[user_id] = number, fields[1]
        _check_all(tokens, users, self.describe())
        return replace(self, tokens={u: tokens[u] for u in users})

    def token(self, user_id: int, ttl_s: int) -> str:
        return _given(self.tokens, user_id, self.describe())


@dataclass(frozen=True, kw_only=True)
class TokenCommand:
    """Tokens printed by a command, run once per user with ``{user}`` replaced by its id.

    The command is split as a shell would split it (:func:`shlex.split`) and run without a
    shell; what it prints on stdout, stripped, is the token.
    """

    token_command: str
    tokens: Mapping[int, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        try:
            argv = shlex.split(self.token_command)
        except ValueError as exc:
            raise UserTokensError(f"--token-command: {exc}") from None
        if not argv:
            raise UserTokensError("--token-command is empty")
        if not any(USER_FIELD in arg for arg in argv):
            raise UserTokensError(f"--token-command must say where the user id goes: {USER_FIELD}")

    def describe(self) -> str:
        return "--token-command"

    def hint(self) -> str:
        return "does the command print tokens this deployment issued, for the user id it is given?"

    def load(self, users: range) -> TokenCommand:
        argv = shlex.split(self.token_command)
        pool = ThreadPoolExecutor(COMMAND_CONCURRENCY)
        try:
            printed = dict(zip(users, pool.map(lambda u: _run(argv, u), users), strict=True))
        finally:  # after a failure, the users not started yet are not asked
            pool.shutdown(cancel_futures=True)
        return replace(self, tokens=printed)

    def token(self, user_id: int, ttl_s: int) -> str:
        return _given(self.tokens, user_id, self.describe())


def _read(path: str, flag: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UserTokensError(f"{flag} {path}: cannot read it ({reason})") from None


def _user_id(text: str, at: str) -> int:
    if not (text.isascii() and text.isdecimal()) or int(text) < 1:
        raise UserTokensError(f"{at}: a user id is a whole number from 1, got {text[:20]!r}")
    return int(text)


def _check_all(tokens: Mapping[int, str], users: range, source: str) -> None:
    missing = [u for u in users if u not in tokens]
    if missing:
        shown = ", ".join(map(str, missing[:3])) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserTokensError(
            f"{source} has no token for {len(missing)} of the run's {len(users)} users "
            f"({users.start} to {users.stop - 1}): {shown}"
        )


def _given(tokens: Mapping[int, str], user_id: int, source: str) -> str:
    token = tokens.get(user_id)
    if token is None:
        raise UserTokensError(f"{source} gave no token for user {user_id}")
    return token


def _run(argv: list[str], user_id: int) -> str:
    """Run the token command for one user; the token it printed."""
    args = [arg.replace(USER_FIELD, str(user_id)) for arg in argv]
    try:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise UserTokensError(f"--token-command: {argv[0]} not found") from None
    except PermissionError:
        raise UserTokensError(f"--token-command: {argv[0]} may not be run") from None
    except subprocess.TimeoutExpired:
        raise UserTokensError(
            f"--token-command took more than {COMMAND_TIMEOUT_S:g} s for user {user_id}; stopped it"
        ) from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        last = f": {plain(said[-1][:200])}" if said else ""
        raise UserTokensError(f"--token-command exited with {done.returncode} for user {user_id}{last}")
    token = done.stdout.strip()
    if not token or len(token.split()) != 1:
        raise UserTokensError(
            f"--token-command printed {'nothing' if not token else 'more than one word'} for user {user_id}: "
            "it must print the user's token alone"
        )
    return token
