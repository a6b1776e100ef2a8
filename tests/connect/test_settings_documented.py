"""Every connect setting is in the README, with its real default."""

from __future__ import annotations

from pathlib import Path

from connectors.oauth import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_connect_setting() -> None:
    text = README.read_text()
    for name, _, default in SETTINGS:
        assert f"`{name}`" in text, name
        if default.startswith("https://"):
            assert f"`{default}`" in text, (name, default)
