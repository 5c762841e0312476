"""Fixtures for tests of the embedded server itself: a data directory of its own, its
server started and always stopped (SIGKILL as a last resort), and child processes
that are always killed."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def embedded_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """ARGONFS_HOME in a fresh directory under /tmp whose parents every user may traverse
    (so a test as another uid meets argonfs's own permissions), and no ARGONFS_MONGO_URI."""
    from argonfs.store.db.embedded import server_info, stop_server

    parent = Path(tempfile.mkdtemp(prefix="argonfs-embedded-", dir="/tmp"))
    parent.chmod(0o755)
    home = parent / "home"
    monkeypatch.setenv("ARGONFS_HOME", str(home))
    monkeypatch.delenv("ARGONFS_MONGO_URI", raising=False)
    monkeypatch.setenv("ARGONFS_MONGO_TIMEOUT_MS", "2000")
    try:
        yield home
    finally:
        info = server_info(home) if home.exists() else None
        try:
            stop_server(home, timeout=20)
        finally:
            if info is not None and server_info(home) is not None:
                os.kill(info["pid"], signal.SIGKILL)
            shutil.rmtree(parent, ignore_errors=True)
