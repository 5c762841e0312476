"""Local paths: computed without platformdirs on Linux (it costs every command 20 ms to
import), so they must be what platformdirs would say."""

from __future__ import annotations

import platformdirs
import pytest

from argonfs import config


@pytest.mark.parametrize(
    "xdg",
    [{}, {"XDG_DATA_HOME": "/srv/data", "XDG_CONFIG_HOME": "/srv/conf"}, {"XDG_DATA_HOME": "  ", "XDG_CONFIG_HOME": ""}],
)
def test_paths_are_platformdirs_paths(xdg: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "ARGONFS_HOME", "ARGONFS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in xdg.items():
        monkeypatch.setenv(name, value)
    assert config.data_dir() == platformdirs.user_data_path("argonfs", appauthor=False)
    assert config.config_file() == platformdirs.user_config_path("argonfs", appauthor=False) / "config.toml"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ARGONFS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ARGONFS_CONFIG", str(tmp_path / "c.toml"))
    (tmp_path / "c.toml").write_text('author = "from the file"\n')
    monkeypatch.delenv("ARGONFS_AUTHOR", raising=False)
    assert config.data_dir() == tmp_path / "home"
    assert config.default_author() == "from the file"
