"""Settings: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from geo_common.settings import Settings, SettingsError, load_settings, read_env_file, settings_table


def test_defaults_are_local() -> None:
    s = Settings.from_env({})
    assert (s.api_host, s.api_port, s.ws_host, s.ws_port) == ("127.0.0.1", 8080, "127.0.0.1", 8081)
    assert s.pg_replicas == ()
    assert s.dev is False


def test_values_are_parsed_to_their_types() -> None:
    s = Settings.from_env(
        {
            "GEO_API_PORT": " 9000 ",
            "GEO_PG_REPLICAS": "postgresql://a@h1:5433/geo, postgresql://a@h2:5434/geo",
            "GEO_REDIS_CLUSTER": "127.0.0.1:7000,127.0.0.1:7001",
            "GEO_MAX_RADIUS_M": "25000",
            "GEO_DEV": "yes",
            "GEO_LOG_LEVEL": "DEBUG",
        }
    )
    assert s.api_port == 9000
    assert s.pg_replicas == ("postgresql://a@h1:5433/geo", "postgresql://a@h2:5434/geo")
    assert s.redis_cluster == ("127.0.0.1:7000", "127.0.0.1:7001")
    assert s.max_radius_m == 25_000.0
    assert s.dev is True
    assert s.log_level == "debug"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GEO_API_PORT", "abc"),
        ("GEO_API_PORT", "70000"),
        ("GEO_WS_PORT", "-1"),
        ("GEO_PG_PRIMARY", "mysql://localhost/geo"),
        ("GEO_PG_PRIMARY", "postgresql://host:notaport/geo"),
        ("GEO_PG_REPLICAS", "postgresql://ok:1/geo,http://bad/geo"),
        ("GEO_REDIS_URL", "localhost:6379"),
        ("GEO_REDIS_CLUSTER", "127.0.0.1"),
        ("GEO_REDIS_CLUSTER", "127.0.0.1:99999"),
        ("GEO_MAX_RADIUS_M", "nan"),
        ("GEO_MAX_RADIUS_M", "0"),
        ("GEO_DEV", "maybe"),
        ("GEO_LOG_LEVEL", "loud"),
        ("GEO_JWT_SECRET", "short-secret"),
        ("GEO_JWT_TTL_S", "1.5"),
        ("GEO_REDIS_NAMESPACE", "has space"),
        ("GEO_REDIS_NAMESPACE", ""),
        ("GEO_PROCESS_TUNING", "sometimes"),
    ],
)
def test_malformed_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert str(info.value).startswith(f"{variable}=")
    assert isinstance(info.value, ValueError)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.api_port = 1  # type: ignore[misc]


def test_env_file_is_read_under_the_real_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# endpoints\nexport GEO_API_PORT=9100\nGEO_WS_PORT='9101'\n\nGEO_DEV=1\n")
    assert read_env_file(env_file) == {"GEO_API_PORT": "9100", "GEO_WS_PORT": "9101", "GEO_DEV": "1"}
    s = load_settings({"GEO_WS_PORT": "9200"}, env_file)
    assert (s.api_port, s.ws_port, s.dev) == (9100, 9200, True)
    assert read_env_file(tmp_path / "absent") == {}


def test_table_lists_every_variable() -> None:
    table = settings_table()
    for f in fields(Settings):
        assert f"`{f.metadata['env']}`" in table


def test_primary_may_list_several_hosts_for_failover() -> None:
    dsn = "postgresql://postgres@127.0.0.1:5432,127.0.0.1:5433/geo?target_session_attrs=read-write"
    assert Settings.from_env({"GEO_PG_PRIMARY": dsn}).pg_primary == dsn
    for bad in ("postgresql://postgres@h1:5432,h2:notaport/geo", "postgresql://postgres@h1:5432,/geo"):
        with pytest.raises(SettingsError, match="^GEO_PG_PRIMARY="):
            Settings.from_env({"GEO_PG_PRIMARY": bad})


def test_breaker_settings_are_bounded() -> None:
    s = Settings.from_env({"GEO_BREAKER_FAILURES": "3", "GEO_BREAKER_RESET_S": "0.5"})
    assert (s.breaker_failures, s.breaker_reset_s) == (3, 0.5)
    for variable, value in (("GEO_BREAKER_FAILURES", "0"), ("GEO_BREAKER_RESET_S", "-1")):
        with pytest.raises(SettingsError, match=f"^{variable}="):
            Settings.from_env({variable: value})


def test_optional_identity_and_tls_settings_may_be_set_empty() -> None:
    # An env file or a manifest that lists the variable with no value means "none", as absent does.
    names = ("GEO_JWT_PROVIDER_ISSUER", "GEO_JWT_JWKS_URL", "GEO_JWT_PUBLIC_KEY", "GEO_REDIS_TLS_CA")
    s = Settings.from_env({name: "  " for name in names})
    assert (s.jwt_provider_issuer, s.jwt_jwks_url, s.jwt_public_key, s.redis_tls_ca) == ("", "", "", "")
    assert Settings.from_env({"GEO_JWT_PROVIDER_ISSUER": " https://id.example.com/ "}).jwt_provider_issuer == (
        "https://id.example.com/"
    )
    with pytest.raises(SettingsError, match="^GEO_JWT_ISSUER="):
        Settings.from_env({"GEO_JWT_ISSUER": ""})  # local tokens always carry an issuer


def test_process_tuning_is_on_unless_turned_off() -> None:
    assert Settings.from_env({}).process_tuning is True
    for value, expected in (("on", True), ("OFF", False), ("true", True), ("0", False), (" off ", False)):
        assert Settings.from_env({"GEO_PROCESS_TUNING": value}).process_tuning is expected


@pytest.mark.parametrize("value", ["true", "false", "1"])
def test_the_retired_huge_pages_variable_is_refused_naming_its_replacement(value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="^GEO_API_HUGE_PAGES=.*GEO_PROCESS_TUNING"):
        Settings.from_env({"GEO_API_HUGE_PAGES": value, "GEO_PROCESS_TUNING": "on"})
    env_file = tmp_path / "env"  # an old env file is refused too, not silently half-read
    env_file.write_text(f"GEO_API_HUGE_PAGES={value}\n")
    with pytest.raises(SettingsError, match="^GEO_API_HUGE_PAGES="):
        load_settings({}, env_file)
