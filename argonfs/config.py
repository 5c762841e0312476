"""Where argonfs keeps its local state, and who is writing."""

from __future__ import annotations

import getpass
import os
import tomllib
from pathlib import Path

DEFAULT_REPO = "argonfs"


def data_dir() -> Path:
    """``$ARGONFS_HOME``, else the platform's per-user data directory (e.g. ~/.local/share/argonfs)."""
    env = os.environ.get("ARGONFS_HOME")
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("argonfs", appauthor=False)


def config_file() -> Path:
    env = os.environ.get("ARGONFS_CONFIG")
    if env:
        return Path(env)
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
        with path.open("rb") as f:
            author = tomllib.load(f).get("author")
        if isinstance(author, str) and author:
            return author
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
