"""The FUSE tier: real mounts of a test repository, served by the real daemon.

``mount_factory`` starts ``argonfs mount --foreground`` in a subprocess, waits for its
ready file (failing at once if the daemon dies), and in ``finally`` always unmounts
lazily and stops the daemon, so no test can leave a mount behind.  On the happy path
it asserts that SIGTERM unmounted cleanly and the daemon exited 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_DEADLINE = 60.0


@dataclass
class Mount:
    path: Path
    proc: subprocess.Popen
    log: Path

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _unmount(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], check=False, capture_output=True)


def stop(m: Mount, *, check: bool = True) -> None:
    """SIGTERM the daemon; with ``check``, require a clean unmount and exit 0."""
    if m.proc.poll() is None:
        m.proc.send_signal(signal.SIGTERM)
        try:
            m.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            m.proc.kill()
            m.proc.wait()
    if check:
        assert m.proc.returncode == 0, f"daemon exited {m.proc.returncode}:\n{m.log_text()[-3000:]}"
        assert not os.path.ismount(m.path), "SIGTERM left the filesystem mounted"


@pytest.fixture
def mount_factory(mongo_uri: str, repo_name: str, tmp_path: Path):
    mounts: list[Mount] = []

    def start(*extra: str, env: dict[str, str] | None = None, uri: str | None = None) -> Mount:
        n = len(mounts)
        path = tmp_path / f"mnt{n}"
        path.mkdir()
        ready = tmp_path / f"ready{n}"
        log = tmp_path / f"mount{n}.log"
        environ = dict(os.environ, ARGONFS_MONGO_URI=uri or mongo_uri, ARGONFS_REPO=repo_name, ARGONFS_HOME=str(tmp_path / "home"))
        environ.update(env or {})
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                [sys.executable, "-m", "argonfs", "mount", "--foreground", "--ready-file", str(ready), *extra, str(path)],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environ,
            )
        m = Mount(path, proc, log)
        mounts.append(m)
        deadline = time.monotonic() + READY_DEADLINE
        while not ready.exists():
            if proc.poll() is not None:
                pytest.fail(f"mount daemon exited {proc.returncode} before ready:\n{m.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"mount not ready within {READY_DEADLINE} s:\n{m.log_text()[-3000:]}")
            time.sleep(0.02)
        assert os.path.ismount(path)
        return m

    start.stop = stop  # type: ignore[attr-defined]
    try:
        yield start
        for m in mounts:
            stop(m, check=True)
    finally:
        for m in mounts:
            _unmount(m.path)
            if m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait()


@pytest.fixture
def mnt(mount_factory) -> Iterator[Mount]:
    yield mount_factory()
