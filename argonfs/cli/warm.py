"""The warm command process of one data directory (docs/cli.md, "Warm commands").

It imports argonfs.cli (click, pymongo, bson) once, listens on ``<home>/warm.sock`` and
forks one child per short command sent by the launcher (argonfs/launcher.py).  No
MongoClient exists before a fork: each child opens its own, as the command does
in-process.  It refuses (the launcher then runs the command itself) and exits when the
argonfs files it loaded changed, or the launcher runs another interpreter or sys.path;
it exits after ``ARGONFS_WARM_IDLE`` seconds without a command (900) and when its data
directory disappears.  One per data directory: it holds ``warm.lock`` (flock) while
it runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time

SOCKET = "warm.sock"
LOCK = "warm.lock"
LOG = "warm.log"


def _loaded_files() -> dict[str, float]:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files: dict[str, float] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and os.path.abspath(path).startswith(package + os.sep):
            with contextlib.suppress(OSError):
                files[path] = os.stat(path).st_mtime_ns
    return files


def _unchanged(files: dict[str, float]) -> bool:
    try:
        return all(os.stat(p).st_mtime_ns == m for p, m in files.items())
    except OSError:
        return False


def identity() -> dict[str, object]:
    """What a launcher must share with this process to use it (argonfs/launcher.py sends the same)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"executable": sys.executable, "path": sys.path[1:], "package": package}


def start(home: str) -> None:
    """Start the warm process of ``home`` detached, unless one runs already."""
    try:
        with open(os.path.join(home, LOCK), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # one runs (it holds the lock), or the directory is not ours to write
    env = dict(os.environ)
    env.pop("COVERAGE_PROCESS_START", None)
    with open(os.path.join(home, LOG), "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "argonfs.cli.warm", home],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd="/",
            env=env,
        )


def _read_line(conn: socket.socket) -> tuple[bytes, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return data, fds


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Run one command in a forked child; never returns."""
    code = 1
    try:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(request["umask"])
        streams = request["streams"]
        sys.stdin = open(0, encoding=streams[0][0], errors=streams[0][1], closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding=streams[1][0], errors=streams[1][1], closefd=False, buffering=1 if os.isatty(1) else -1)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding=streams[2][0], errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        from argonfs.cli import main

        try:
            main(args=request["argv"], prog_name="argonfs")
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        with contextlib.suppress(BaseException):
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
        os._exit(code)


def serve(home: str) -> None:
    """Serve ``home``'s short commands until idle, stale or the directory is gone."""
    lock = open(os.path.join(home, LOCK), "a")  # noqa: SIM115  (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another one won the race
    # The point: imported once, before the forks (what the short commands import; no
    # MongoClient is created by an import).
    import argonfs.cli
    import argonfs.config
    import argonfs.naming
    import argonfs.store
    import argonfs.store.db.embedded
    import argonfs.store.db.mongo
    import argonfs.store.repo.repository  # noqa: F401

    files = _loaded_files()
    me = identity()
    idle = float(os.environ.get("ARGONFS_WARM_IDLE", "900"))
    path = os.path.join(home, SOCKET)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(1.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    last = time.monotonic()
    print(f"warm process {os.getpid()} serving {home}", flush=True)
    try:
        while True:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            if not os.path.isdir(home) or time.monotonic() - last > idle:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            with conn:
                conn.settimeout(10)
                try:
                    data, fds = _read_line(conn)
                    request = json.loads(data)
                except (OSError, ValueError):
                    continue
                fresh = _unchanged(files) and os.path.isdir(home)
                if not fresh or request.get("identity") != me or len(fds) != 3:
                    for fd in fds:
                        os.close(fd)
                    with contextlib.suppress(OSError):
                        conn.sendall(b'{"refused": true}\n')
                    if not fresh:
                        return
                    continue
                conn.settimeout(None)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    lock.close()
                    _child(conn, request, fds)
                for fd in fds:
                    os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # ours: no other warm process runs while we hold the lock
        listener.close()


if __name__ == "__main__":
    serve(sys.argv[1])
