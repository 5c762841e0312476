"""The embedded default: one local SecantusDB server per data directory.

With no MongoDB URI, argonfs needs a server that every process of the user (a mount
daemon, many CLI calls) reaches at once, so it cannot live inside one of them.  The
first process that needs it starts ``python -m argonfs.store.db.embedded serve DIR`` as a
detached process; the server holds ``DIR/server.lock`` for its whole life and publishes
its address in ``DIR/server.json``.  Starting is serialised by ``DIR/start.lock``.

The server is private to its user and durable:

- ``DIR/embedded.json`` (0600), written at the first start, holds a generated password
  and the port.  The server requires authentication, and every later start listens on
  the same port, so a long-lived client finds it again by itself after a restart.
- Every file the server and this module create is 0600 and every directory 0700.
- WiredTiger fsyncs its journal at every commit (``sync_on_commit``) before the write is
  acknowledged, so an acknowledged write survives a crash of the server or the machine.

A full disk: WiredTiger panics when a journal write fails (ENOSPC) and answers every
later operation with ``WT_PANIC``; only a new process recovers, by replaying the journal.
So the server checks its engine four times a second and exits once it has panicked; the
next command starts it again, and recovery keeps the acknowledged writes (but, seen with
SecantusDB 0.7.0b3, possibly the last one before the panic).  A start needs room (a new
journal file, and recovery writes the replayed journal into the tables): while the disk
has less than ``START_SPACE`` free, a failed start or a server failure is reported as
``NoSpace`` (docs/cli.md, "A full disk").

Blocking functions; no trio here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from argonfs.config import private_dir, private_fd, write_private
from argonfs.errors import NoSpace, StoreUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
USER = "argonfs"
#: Free space below which a failed start or a failing server means a full disk: a start
#: writes a new journal file and the replayed journal into the tables.
START_SPACE = 16 * 2**20
#: The server's exit code after WiredTiger panicked (a journal write failed).
PANIC_EXIT = 3
#: Added to SecantusDB's WiredTiger settings (through WiredTiger's own environment variable) so
#: a full disk can be recovered from: a checkpoint at every 4 MiB of journal (recovery replays
#: little, and journal files a checkpoint covers are removed, instead of every 60 s) and
#: journal files extended 1 MiB at a time (instead of to 10 MiB when they are created).
WIREDTIGER_CONFIG = "checkpoint=(log_size=4MB),file_extend=(log=1MB)"


def _paths(home: Path) -> dict[str, Path]:
    return {
        "info": home / "server.json",
        "settings": home / "embedded.json",
        "lock": home / "server.lock",
        "start": home / "start.lock",
        "log": home / "server.log",
        "db": home / "db",
    }


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically by a 0600 JSON file, fsynced."""
    write_private(path, json.dumps(data).encode(), sync=True)


def _private_dir(path: Path) -> None:
    """The data directory, created 0700 if missing (an existing one is the user's choice)."""
    private_dir(path, restrict=False)


def _make_private(home: Path) -> None:
    """Restrict what earlier versions created world-readable: files 0600, directories 0700."""
    paths = _paths(home)
    for name in ("info", "settings", "lock", "start", "log"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(paths[name], 0o600)
    if paths["db"].exists():
        os.chmod(paths["db"], 0o700)
        for root, dirs, files in os.walk(paths["db"]):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o700)
            for f in files:
                os.chmod(os.path.join(root, f), 0o600)


def _settings(home: Path) -> dict[str, Any]:
    """The data directory's port and credential, generated at the first start."""
    path = _paths(home)["settings"]
    try:
        stored: dict[str, Any] = json.loads(path.read_text())
        return stored
    except FileNotFoundError:
        settings = {"user": USER, "password": secrets.token_urlsafe(24), "port": 0}
        _write_private(path, settings)
        return settings


def _client_uri(home: Path, info: dict[str, Any]) -> str:
    """The URI a client of this data directory connects with: address and credential."""
    settings = json.loads(_paths(home)["settings"].read_text())
    return f"mongodb://{settings['user']}:{settings['password']}@127.0.0.1:{info['port']}/?authSource=admin"


@contextlib.contextmanager
def _flock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    fd = private_fd(path, os.O_RDWR)
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
    """The running server's ``{"uri", "port", "pid", "data"}`` (no credential), or None if none is running."""
    info = _paths(home)["info"]
    if not server_running(home):
        return None
    try:
        found: dict[str, Any] = json.loads(info.read_text())
        return found
    except (OSError, ValueError):
        return None


def free_space(home: Path) -> int:
    """Bytes free for this user on the disk holding ``home``."""
    st = os.statvfs(home)
    return st.f_bavail * st.f_frsize


def no_space(home: Path) -> NoSpace | None:
    """``NoSpace`` if the disk of ``home`` is too full for the server to work, else None."""
    try:
        free = free_space(home)
    except OSError:
        return None
    if free >= START_SPACE:
        return None
    return NoSpace(f"no space left on device for the embedded server's data in {home} ({free / 2**20:.1f} MiB free): free some space and retry")


def ensure_server(home: Path) -> str:
    """Return the URI (with its credential) of the data directory's server, starting one if needed."""
    try:
        _private_dir(home)
        info = server_info(home)
        if info is None:
            with _flock(_paths(home)["start"]):
                info = server_info(home) or _spawn(home)
        if "port" not in info or not _paths(home)["settings"].exists():
            raise StoreUnavailable(
                f"the embedded server of {home} (pid {info.get('pid')}) was started by an older argonfs"
                " and is open to every local user; stop it with 'argonfs server stop' and retry"
            )
        return _client_uri(home, info)
    except PermissionError as exc:
        raise StoreUnavailable(
            f"cannot use the embedded server's data directory {home}: {exc.strerror} on {exc.filename}"
            " (it belongs to another user; set ARGONFS_HOME to a directory of your own)"
        ) from None


def _spawn(home: Path) -> dict[str, Any]:
    paths = _paths(home)
    paths["info"].unlink(missing_ok=True)
    logfd = private_fd(paths["log"], os.O_WRONLY | os.O_APPEND)
    with os.fdopen(logfd, "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "argonfs.store.db.embedded", "serve", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            full = no_space(home)
            if full is not None:
                raise full
            tail = paths["log"].read_text(errors="replace")[-2000:]
            raise StoreUnavailable(f"the embedded MongoDB server in {home} exited with code {proc.returncode}: {tail.strip()}")
        info = server_info(home)
        if info is not None and info.get("pid") == proc.pid:
            log.info("started embedded server pid %d at %s", proc.pid, info["uri"])
            return info
        time.sleep(0.02)
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


def _add_user(server: Any, settings: dict[str, Any]) -> None:
    """Give the server the data directory's user (root), replacing any older credential."""
    from secantus.auth import SCRAM_SHA_256, derive_credentials

    user = settings["user"]
    # 4096 iterations, the RFC 7677 minimum: stretching protects weak passwords, this one is
    # 144 random bits, and each new client process pays the derivation (5 ms at 15000)
    creds = derive_credentials(settings["password"], iterations=4096, mechanism=SCRAM_SHA_256, username=user)
    record = {
        "_id": f"admin.{user}",
        "user": user,
        "db": "admin",
        "credentials": creds.to_doc(),
        "roles": [{"role": "root", "db": "admin"}],
        "mechanisms": [SCRAM_SHA_256],
    }
    server.storage.add_user("admin", user, record, replace=True)


def _listen(server: Any, home: Path, settings: dict[str, Any]) -> None:
    """Listen on the data directory's port; if another program took it, on a new one (recorded)."""
    server.port = settings["port"]
    try:
        server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"port {settings['port']} is taken; clients started before must be restarted", flush=True)
        server.port = 0
        server.start()
    if server.port != settings["port"]:
        settings = {**settings, "port": server.port}
        _write_private(_paths(home)["settings"], settings)


def _stop_listening(server: Any) -> None:
    """Free the port before the lock is released, so a server started right after can take it.

    SecantusDB's ``stop`` only closes the listening socket, which leaves its accept thread
    blocked in ``accept`` and the port listening until the process exits (and ``stop``
    waiting 2 s for that thread).  Shutting the socket down wakes the thread at once.
    """
    sock = getattr(server, "_socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _panicked(server: Any) -> bool:
    """True once WiredTiger has panicked: every later operation fails until a new process recovers."""
    try:
        server.storage._conn.open_session().close()
    except Exception as exc:  # WiredTigerError, or anything a broken engine raises
        return "WT_PANIC" in str(exc)
    return False


def serve(home: Path) -> int:
    """Run the server in this process until SIGTERM or SIGINT."""
    from secantus import SecantusDBServer

    os.umask(0o077)  # WiredTiger's files, the journal, and everything else: 0600 / 0700
    os.environ["WIREDTIGER_CONFIG"] = WIREDTIGER_CONFIG
    paths = _paths(home)
    _private_dir(home)
    with _flock(paths["lock"], blocking=False) as got:
        if not got:
            print(f"another server already serves {home}", file=sys.stderr)
            return 1
        stop = threading.Event()
        code = 0
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        _make_private(home)
        settings = _settings(home)
        server = SecantusDBServer(
            host="127.0.0.1",
            port=settings["port"],
            storage_path=str(paths["db"]),
            require_auth=True,
            enable_test_commands=False,
            durable=True,
            sync_on_commit=True,
        )
        _add_user(server, settings)
        _listen(server, home, settings)
        try:
            info = {"uri": server.uri, "port": server.port, "pid": os.getpid(), "data": str(paths["db"])}
            _write_private(paths["info"], info)
            print(f"argonfs embedded server pid {os.getpid()} listening at {server.uri}", flush=True)
            while not stop.wait(0.25):
                if _panicked(server):
                    print("WiredTiger panicked (a full disk?): stopping; the next command starts the server again", flush=True)
                    code = PANIC_EXIT
                    break
        finally:
            paths["info"].unlink(missing_ok=True)
            _stop_listening(server)
            server.stop()
            print("argonfs embedded server stopped", flush=True)
    return code


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        print("usage: python -m argonfs.store.db.embedded serve DATA_DIR", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    raise SystemExit(serve(Path(sys.argv[2])))
