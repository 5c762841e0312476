"""The FUSE tier: real mounts of a test repository, served by the real daemon.

``mount_factory`` starts ``argonfs mount --foreground`` in a subprocess, waits for its
ready file (failing at once if the daemon dies), and in ``finally`` always unmounts
lazily and stops the daemon, so no test can leave a mount behind.  On the happy path
it asserts that SIGTERM unmounted cleanly and the daemon exited 0.

Every test that mounts runs under a deadline (``DEADLINE`` seconds, or
``@pytest.mark.deadline(seconds)``): when it passes, the test's FUSE connections are
aborted through fusectl, so a hung mount makes every process waiting on it fail with
ENOTCONN and the test fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.remote.fixtures import *  # noqa: F403  (remote mounts run over every backend)

READY_DEADLINE = 60.0
DEADLINE = 240.0
FUSECTL = Path("/sys/fs/fuse/connections")


def _fusectl() -> Path:
    """The fusectl filesystem, mounted if nobody has yet."""
    with open("/proc/self/mounts") as f:
        if not any(line.split()[1] == str(FUSECTL) for line in f):
            subprocess.run(["mount", "-t", "fusectl", "fusectl", str(FUSECTL)], check=False, capture_output=True)
    return FUSECTL


@dataclass
class Mount:
    path: Path
    proc: subprocess.Popen
    log: Path
    #: the FUSE connection number (the minor device number of the mount)
    connection: int = -1
    #: the daemon's exit status the fixture requires at the end (a test that kills it says so)
    expected_exit: int = 0

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __fspath__(self) -> str:
        return str(self.path)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def abort(self) -> None:
        """Abort the FUSE connection: every request in flight and to come fails."""
        abort = _fusectl() / str(self.connection) / "abort"
        if self.connection >= 0 and abort.exists():
            abort.write_text("1")


def abort_on_timeout(m: Mount, procs: list[subprocess.Popen], timeout: float) -> list[int]:
    """Wait for processes using a mount; past ``timeout``, abort the mount (so none can
    stay stuck in the kernel), kill them and fail."""
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            m.abort()
            for q in procs:
                q.kill()
            for q in procs:
                q.wait()
            pytest.fail(f"processes using the mount did not finish within {timeout} s: the mount hung (aborted)")
    return codes


def _mounted(path: Path) -> bool:
    """In the mount table (an aborted mount answers stat with ENOTCONN, so
    ``os.path.ismount`` says no)."""
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


def _unmount(path: Path) -> None:
    if _mounted(path):
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
        assert m.proc.returncode == m.expected_exit, f"daemon exited {m.proc.returncode}:\n{m.log_text()[-3000:]}"
        assert not os.path.ismount(m.path), "SIGTERM left the filesystem mounted"


@pytest.fixture
def mount_factory(mongo_uri: str, repo_name: str, tmp_path: Path, request: pytest.FixtureRequest):
    mounts: list[Mount] = []
    marker = request.node.get_closest_marker("deadline")
    deadline = float(marker.args[0]) if marker else DEADLINE
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for m in mounts:
            m.abort()

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()

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
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environ,
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
        m.connection = os.minor(os.stat(path).st_dev)
        return m

    start.stop = stop  # type: ignore[attr-defined]
    try:
        yield start
        if expired.is_set():
            pytest.fail(f"the test passed its {deadline:.0f} s deadline: its mounts were aborted")
        for m in mounts:
            stop(m, check=True)
    finally:
        timer.cancel()
        for m in mounts:
            _unmount(m.path)
            if m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait()


def assert_read_only(base: Path, existing: str = "papers/0.json") -> None:
    """Every kind of change under ``base`` (a branch or view with a ``papers`` collection
    holding ``existing``) is refused with EROFS."""
    import errno

    attempts = [
        (open, base / existing, "w"),
        (open, base / "papers/9.json", "w"),
        (os.unlink, base / existing),
        (os.mkdir, base / "newcoll"),
        (os.rmdir, base / "papers"),
        (os.rename, base / existing, base / "papers/5.json"),
    ]
    for fn, *args in attempts:
        with pytest.raises(OSError) as info:
            fn(*args)
        assert info.value.errno == errno.EROFS, (fn.__name__, args)


@pytest.fixture
def mnt(mount_factory) -> Iterator[Mount]:
    yield mount_factory()
