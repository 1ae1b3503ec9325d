"""The README's settings table is generated from the settings: keep them in step."""

from __future__ import annotations

from pathlib import Path

from geo_common.settings import settings_table


def test_readme_lists_the_current_settings() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert settings_table() in readme, (
        "regenerate the table: python -c 'from geo_common.settings import settings_table; print(settings_table())'"
    )
