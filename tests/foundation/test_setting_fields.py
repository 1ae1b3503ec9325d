"""The field machinery behind Settings, on a settings class of its own; the old import paths."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from geo_common import env_file, settings
from geo_common.setting_fields import markdown_table, setting, values_from_env
from geo_common.setting_values import SettingsError, parse_int, parse_secret, parse_url


@dataclass(frozen=True, slots=True, kw_only=True)
class _Small:
    port: int = setting(8080, "GEO_T_PORT", parse_int(0, 65535), "a port")
    key: str = setting("dev-key", "GEO_T_KEY", parse_secret, "a key", secret=True)
    url: str = setting("redis://h/0", "GEO_T_URL", parse_url("redis"), "a URL")
    hosts: tuple[str, ...] = setting(("a", "b"), "GEO_T_HOSTS", lambda raw: tuple(raw.split(",")), "hosts")


def test_only_present_variables_are_parsed() -> None:
    assert values_from_env(_Small, {"GEO_T_PORT": " 90 ", "OTHER": "x"}, {}) == {"port": 90}
    assert _Small(**values_from_env(_Small, {}, {})) == _Small()


def test_errors_name_the_variable_and_hide_secrets_and_passwords() -> None:
    with pytest.raises(SettingsError, match=r"^GEO_T_PORT='x': expected a whole number"):
        values_from_env(_Small, {"GEO_T_PORT": "x"}, {})
    with pytest.raises(SettingsError, match=r"^GEO_T_KEY=") as caught:
        values_from_env(_Small, {"GEO_T_KEY": "short"}, {})
    assert "short" not in str(caught.value)
    with pytest.raises(SettingsError, match=r"^GEO_T_URL=") as caught:
        values_from_env(_Small, {"GEO_T_URL": "http://u:hunter2@h/0"}, {})
    assert "hunter2" not in str(caught.value)


def test_a_retired_variable_is_refused_naming_its_replacement() -> None:
    with pytest.raises(SettingsError, match=r"^GEO_T_OLD='1': no longer read; set GEO_T_PORT instead$"):
        values_from_env(_Small, {"GEO_T_OLD": "1"}, {"GEO_T_OLD": "GEO_T_PORT"})


def test_table_shows_defaults_and_help() -> None:
    assert markdown_table(_Small).splitlines() == [
        "| variable | default | meaning |",
        "|---|---|---|",
        "| `GEO_T_PORT` | `8080` | a port |",
        "| `GEO_T_KEY` | `dev-key` | a key |",
        "| `GEO_T_URL` | `redis://h/0` | a URL |",
        "| `GEO_T_HOSTS` | `a,b` | hosts |",
    ]


def test_env_file_helpers_are_still_importable_from_settings() -> None:
    assert settings.read_env_file is env_file.read_env_file
    assert settings.default_env_file is env_file.default_env_file
