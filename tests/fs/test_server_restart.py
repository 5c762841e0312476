"""A mount on the embedded server keeps serving when that server restarts: stopped and
started again by someone, or killed and started again by the mount itself."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RECOVERY_DEADLINE = 30.0


@pytest.fixture
def embedded(tmp_path: Path, repo_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, dict[str, str]]]:
    """An embedded data directory with the test repository in it, and the environment a
    mount needs to use it; its server is always stopped afterwards."""
    from argonfs.store import Repository
    from argonfs.store.db.embedded import server_info, stop_server

    home = tmp_path / "embedded"
    env = {"ARGONFS_MONGO_URI": "", "ARGONFS_HOME": str(home), "ARGONFS_MONGO_TIMEOUT_MS": "2000"}
    monkeypatch.setenv("ARGONFS_HOME", str(home))
    monkeypatch.delenv("ARGONFS_MONGO_URI", raising=False)
    try:
        repo = Repository.open(None, repo_name)
        repo.init()
        repo.import_documents("main", "c", ({"_id": i, "v": "before"} for i in range(3)))
        yield home, env
    finally:
        info = server_info(home)
        try:
            stop_server(home, timeout=20)
        finally:
            if info is not None and server_info(home) is not None:
                os.kill(info["pid"], signal.SIGKILL)


def _eventually_reads(path: Path, expected: bytes) -> None:
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while True:
        try:
            if expected in path.read_bytes():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the mount did not serve {path.name} again"
        time.sleep(0.2)


def test_mount_serves_after_a_restart_by_someone_else(embedded, mount_factory, repo_name: str) -> None:
    from argonfs.store import Repository
    from argonfs.store.db.embedded import ensure_server, stop_server

    home, env = embedded
    m = mount_factory(env=env)
    assert b"before" in (m / "branches/main/c/0.json").read_bytes()
    stop_server(home)
    ensure_server(home)
    Repository.open(None, repo_name).put("main", "c", {"_id": 7, "v": "after"})
    _eventually_reads(m / "branches/main/c/7.json", b"after")
    (m / "branches/main/c/8.json").write_text('{"v": "written through the mount"}')
    assert Repository.open(None, repo_name).get("main", "c", "8").doc["v"] == "written through the mount"


def test_mount_restarts_a_killed_server(embedded, mount_factory, repo_name: str) -> None:
    from argonfs.store import Repository
    from argonfs.store.db.embedded import server_info

    home, env = embedded
    m = mount_factory(env=env)
    assert b"before" in (m / "branches/main/c/1.json").read_bytes()
    os.kill(server_info(home)["pid"], signal.SIGKILL)
    _eventually_reads(m / "branches/main/c/2.json", b"before")  # no one but the mount starts it
    assert server_info(home) is not None
    assert "started again" in m.log_text()
    Repository.open(None, repo_name).put("main", "c", {"_id": 7, "v": "after"})
    _eventually_reads(m / "branches/main/c/7.json", b"after")
