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


def test_private_paths_whatever_the_umask(tmp_path) -> None:
    import os
    import stat

    def mode(p) -> int:
        return stat.S_IMODE(os.stat(p).st_mode)

    old = os.umask(0)
    try:
        deep = config.private_dir(tmp_path / "home" / "a" / "b")
        assert [mode(p) for p in (tmp_path / "home", deep.parent, deep)] == [0o700] * 3
        config.write_private(deep / "f.json", b"{}")
        assert (deep / "f.json").read_bytes() == b"{}" and mode(deep / "f.json") == 0o600
        assert sorted(os.listdir(deep)) == ["f.json"]  # no temporary left
        os.close(config.private_fd(deep / "g.log", os.O_WRONLY | os.O_APPEND))
        assert mode(deep / "g.log") == 0o600
        # what an earlier argonfs made 0755 / 0644 is restricted when used again
        legacy = tmp_path / "home" / "mounts"
        legacy.mkdir(mode=0o755)
        (legacy / "x.log").write_text("old\n")
        os.chmod(legacy / "x.log", 0o644)
        config.private_dir(legacy)
        os.close(config.private_fd(legacy / "x.log", os.O_WRONLY | os.O_APPEND))
        assert (mode(legacy), mode(legacy / "x.log")) == (0o700, 0o600)
        # the data directory itself, when it exists already, is the user's choice
        chosen = tmp_path / "chosen"
        chosen.mkdir(mode=0o755)
        config.private_dir(chosen, restrict=False)
        assert mode(chosen) == 0o755
    finally:
        os.umask(old)
