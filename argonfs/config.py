"""Where argonfs keeps its local state (only its user can read it), and who is writing."""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import stat
import sys
from pathlib import Path

DEFAULT_REPO = "argonfs"

#: what argonfs creates in the data directory is its user's alone, whatever the umask
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


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


def _restrict(fd_or_path: int | str | Path, mode: int) -> None:
    """Take group and other bits off what this user owns and an earlier argonfs created
    more open (0755 directories, 0644 files); another user's is left as it is."""
    st = os.stat(fd_or_path)
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        with contextlib.suppress(PermissionError):
            os.chmod(fd_or_path, mode)


def private_dir(path: Path, *, restrict: bool = True) -> Path:
    """``path`` as a directory only its user can enter; returns it.  It and each missing
    parent are created 0700; with ``restrict``, an existing ``path`` is restricted to 0700
    (existing parents are never changed).  Every directory argonfs makes in the data
    directory comes from here."""
    missing = []
    at = path
    while not at.is_dir():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(d, PRIVATE_DIR)
    if restrict and not missing:
        _restrict(path, PRIVATE_DIR)
    return path


def private_fd(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)`` of a file only its user can read: created 0600,
    and restricted to 0600 if it exists.  Every file argonfs makes in the data directory
    is opened here."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        _restrict(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Replace ``path`` atomically by a 0600 file holding ``data`` (a temporary in the
    same directory, renamed); with ``sync``, fsynced before the rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(private_fd(tmp, os.O_WRONLY | os.O_EXCL), "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


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
