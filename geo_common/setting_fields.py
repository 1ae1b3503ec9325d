"""How a settings field is declared, read from the environment and documented (pure).

A field carries its variable, its parser (:mod:`geo_common.setting_values`), a line of help
and whether it is secret; :class:`geo_common.settings.Settings` declares its fields with
:func:`setting` and this module does the rest for any such frozen dataclass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field, fields
from typing import Any

from geo_common.redact import REDACTED, redact_passwords
from geo_common.setting_values import SettingsError


def setting(default: Any, env: str, parse: Callable[[str], Any], help: str, *, secret: bool = False) -> Any:
    """A dataclass field read from the variable ``env`` by ``parse``, described by ``help``.

    Args:
        default: the value when the variable is absent.
        env: the ``GEO_*`` variable.
        parse: turns the raw string into the value, or raises :class:`ValueError`.
        help: one line for the README's settings table.
        secret: never show the value, not even in the error that refuses it.
    """
    return field(default=default, metadata={"env": env, "parse": parse, "help": help, "secret": secret})


def values_from_env(cls: type, environ: Mapping[str, str], retired: Mapping[str, str]) -> dict[str, Any]:
    """The parsed values of ``cls``'s fields whose variables ``environ`` sets.

    Args:
        cls: a dataclass whose fields were all declared with :func:`setting`.
        environ: the variables; only the fields' are read.
        retired: variables no longer read, each with what replaced it.

    Returns:
        Field name -> parsed value, for the variables present.

    Raises:
        SettingsError: a value is malformed, or a retired variable is set; the message names
            the variable (and shows the value, but never a secret's, nor a URL's password).
    """
    for old, new in retired.items():
        if old in environ:
            raise SettingsError(f"{old}={environ[old]!r}: no longer read; set {new} instead")
    values: dict[str, Any] = {}
    for f in fields(cls):
        env = f.metadata["env"]
        if env not in environ:
            continue
        raw = environ[env]
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            shown = REDACTED if f.metadata["secret"] else repr(redact_passwords(raw))
            raise SettingsError(f"{env}={shown}: {redact_passwords(str(exc))}") from None
    return values


def markdown_table(cls: type) -> str:
    """``cls``'s fields as a Markdown table (variable, default, meaning)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in fields(cls):
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append(f"| `{f.metadata['env']}` | `{shown}` | {f.metadata['help']} |")
    return "\n".join(rows)
