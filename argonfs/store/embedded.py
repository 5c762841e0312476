"""The embedded default: one local SecantusDB server per data directory.

With no MongoDB URI, argonfs needs a server that every process of the user (a mount
daemon, many CLI calls) reaches at once, so it cannot live inside one of them.  The
first process that needs it starts ``python -m argonfs.store.embedded serve DIR`` as a
detached process; the server holds ``DIR/server.lock`` for its whole life and publishes
its address in ``DIR/server.json``.  Starting is serialised by ``DIR/start.lock``.

Blocking functions; no trio here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from argonfs.errors import StoreUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0


def _paths(home: Path) -> dict[str, Path]:
    return {
        "info": home / "server.json",
        "lock": home / "server.lock",
        "start": home / "start.lock",
        "log": home / "server.log",
        "db": home / "db",
    }


@contextlib.contextmanager
def _flock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def server_running(home: Path) -> bool:
    """True while a server process holds the data directory's lock."""
    lock = _paths(home)["lock"]
    if not lock.exists():
        return False
    with _flock(lock, blocking=False) as got:
        return not got


def server_info(home: Path) -> dict[str, Any] | None:
    """The running server's ``{"uri", "pid", "data"}``, or None if none is running."""
    info = _paths(home)["info"]
    if not server_running(home):
        return None
    try:
        return json.loads(info.read_text())
    except (OSError, ValueError):
        return None


def ensure_server(home: Path) -> str:
    """Return the URI of the data directory's server, starting one if needed."""
    home.mkdir(parents=True, exist_ok=True)
    info = server_info(home)
    if info is not None:
        return info["uri"]
    with _flock(_paths(home)["start"]):
        info = server_info(home)
        if info is not None:
            return info["uri"]
        return _spawn(home)


def _spawn(home: Path) -> str:
    paths = _paths(home)
    paths["info"].unlink(missing_ok=True)
    with open(paths["log"], "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "argonfs.store.embedded", "serve", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = paths["log"].read_text(errors="replace")[-2000:]
            raise StoreUnavailable(
                f"the embedded MongoDB server in {home} exited with code {proc.returncode}: {tail.strip()}"
            )
        info = server_info(home)
        if info is not None and info.get("pid") == proc.pid:
            log.info("started embedded server pid %d at %s", proc.pid, info["uri"])
            return info["uri"]
        time.sleep(0.05)
    proc.terminate()
    raise StoreUnavailable(f"the embedded MongoDB server in {home} did not start within {START_TIMEOUT:.0f} s")


def stop_server(home: Path, timeout: float = 30.0) -> bool:
    """Ask the data directory's server to stop; True if one was running."""
    info = server_info(home)
    if info is None:
        return False
    try:
        os.kill(info["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while server_running(home):
        if time.monotonic() > deadline:
            raise StoreUnavailable(f"the embedded server (pid {info['pid']}) did not stop within {timeout:.0f} s")
        time.sleep(0.05)
    return True


def serve(home: Path) -> int:
    """Run the server in this process until SIGTERM or SIGINT."""
    from secantus import SecantusDBServer

    paths = _paths(home)
    home.mkdir(parents=True, exist_ok=True)
    with _flock(paths["lock"], blocking=False) as got:
        if not got:
            print(f"another server already serves {home}", file=sys.stderr)
            return 1
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(paths["db"]))
        server.start()
        try:
            tmp = paths["info"].with_suffix(".tmp")
            tmp.write_text(json.dumps({"uri": server.uri, "pid": os.getpid(), "data": str(paths["db"])}))
            os.replace(tmp, paths["info"])
            print(f"argonfs embedded server pid {os.getpid()} listening at {server.uri}", flush=True)
            while not stop.wait(1.0):
                pass
        finally:
            paths["info"].unlink(missing_ok=True)
            server.stop()
            print("argonfs embedded server stopped", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        print("usage: python -m argonfs.store.embedded serve DATA_DIR", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    raise SystemExit(serve(Path(sys.argv[2])))
