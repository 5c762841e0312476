"""Where argonfs keeps its local state, and who is writing."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

DEFAULT_REPO = "argonfs"


def _xdg(variable: str, default: str) -> Path:
    """What platformdirs answers on Linux, without importing it (20 ms of every command)."""
    base = os.environ.get(variable, "").strip()
    return Path(base or os.path.expanduser(default)) / "argonfs"


def data_dir() -> Path:
    """``$ARGONFS_HOME``, else the platform's per-user data directory (e.g. ~/.local/share/argonfs)."""
    env = os.environ.get("ARGONFS_HOME")
    if env:
        return Path(env)
    if sys.platform == "linux":
        return _xdg("XDG_DATA_HOME", "~/.local/share")
    from platformdirs import user_data_path

    return user_data_path("argonfs", appauthor=False)


def config_file() -> Path:
    env = os.environ.get("ARGONFS_CONFIG")
    if env:
        return Path(env)
    if sys.platform == "linux":
        return _xdg("XDG_CONFIG_HOME", "~/.config") / "config.toml"
    from platformdirs import user_config_path

    return user_config_path("argonfs", appauthor=False) / "config.toml"


def default_author() -> str:
    """The identity recorded on CLI writes: ``$ARGONFS_AUTHOR``, else ``author`` in the
    config file, else the operating-system user."""
    env = os.environ.get("ARGONFS_AUTHOR")
    if env:
        return env
    path = config_file()
    if path.is_file():
        import tomllib

        with path.open("rb") as f:
            author = tomllib.load(f).get("author")
        if isinstance(author, str) and author:
            return author
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
