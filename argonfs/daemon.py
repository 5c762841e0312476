"""The mount daemon: one repository (or one remote) served at one mountpoint by pyfuse3
under trio.

``serve`` runs in the foreground: it mounts, confirms the mount answers, signals
readiness (a ready file, and a line on a pipe for the ``argonfs mount`` that started it),
serves until unmounted or told to stop (SIGTERM, SIGINT, SIGHUP), then unmounts.
``start`` is what ``argonfs mount`` does without ``--foreground``: it starts ``serve``
in a new session, detached, and returns once the mount is usable.

What is served is a ``Catalog`` (argonfs/snapshot.py): ``MongoCatalog`` over a
repository, or, with ``MountConfig.remote``, ``RemoteCatalog`` over a remote's object
store, read-only and with no MongoDB (pymongo is not even imported).
"""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from argonfs.config import data_dir, private_dir, private_fd, write_private
from argonfs.errors import ArgonError, Conflict, NotFound, ReadOnly
from argonfs.remote.cache import DEFAULT_SIZE, cache_dir

if TYPE_CHECKING:
    from argonfs.snapshot import Catalog

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


@dataclass
class MountConfig:
    mountpoint: str
    mongo: str | None = None
    repo: str | None = None
    ready_file: str | None = None
    options: list[str] = field(default_factory=list)
    debug: bool = False
    threads: int = 16
    read_log: bool = False
    #: serve this remote (a URL for ``open_store``) read-only instead of a repository
    remote: str | None = None
    #: bytes of the remote's on-disk cache (``remote_cache_dir``)
    cache_size: int = DEFAULT_SIZE
    #: mount over a directory with files in it (hidden until unmount); refused otherwise
    nonempty: bool = False


def _state_dir() -> Path:
    return private_dir(data_dir() / "mounts")


def state_file(mountpoint: str) -> Path:
    """Where a running daemon records its pid, by mountpoint."""
    key = hashlib.sha256(os.path.realpath(mountpoint).encode()).hexdigest()[:16]
    return _state_dir() / f"{key}.json"


def log_file(mountpoint: str) -> Path:
    return state_file(mountpoint).with_suffix(".log")


def remote_cache_dir(url: str) -> Path:
    """Where a remote mount caches the remote's chunks and pack blocks, by URL (mounts
    of one remote and ``argonfs serve --remote`` share it: every entry is immutable and
    written atomically)."""
    return cache_dir(url)


def check_mountpoint(mountpoint: str, *, nonempty: bool = False) -> str:
    path = os.path.realpath(mountpoint)
    if _dead_mount(path):
        log.warning("%s: the mount's daemon is gone (ENOTCONN); cleaning up its mount", path)
        _lazy_unmount(path)
    if not os.path.isdir(path):
        raise NotFound(f"mountpoint {mountpoint!r} is not a directory")
    if os.path.ismount(path):
        raise Conflict(f"{mountpoint!r} is already a mountpoint")
    if not nonempty:
        _check_empty(mountpoint, path)
    return path


def _check_empty(mountpoint: str, path: str) -> None:
    """Refuse a mountpoint with files in it: the mount would hide them until unmount, with
    nothing to say so (libfuse 3 mounts there silently; fuse 2 refused without
    ``-o nonempty``)."""
    with os.scandir(path) as it:
        names = sorted(entry.name for entry in it)
    if names:
        shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
        raise Conflict(
            f"{mountpoint!r} is not empty ({len(names)} entries: {shown}); a mount would hide them until unmount: "
            "mount on an empty directory, or pass --nonempty"
        )


def _mounted(path: str) -> bool:
    """Whether ``path`` is a mountpoint in /proc/self/mounts (``os.path.ismount`` needs a
    stat, which a dead FUSE connection answers with ENOTCONN)."""
    escaped = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
        return any(line.split(" ")[1] == escaped for line in f if line.count(" ") >= 2)


def _dead_mount(path: str) -> bool:
    """A FUSE mount whose daemon died (kill -9): still mounted, every request ENOTCONN.
    statfs always asks the daemon (a stat may be answered from the kernel's cache)."""
    if not _mounted(path):
        return False
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def _lazy_unmount(path: str) -> None:
    proc = subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"fusermount3 exited {proc.returncode}"
        raise Conflict(f"cannot clean up the dead mount at {path!r}: {message}")


def fuse_options(config: MountConfig, name: str) -> set[str]:
    """pyfuse3's defaults, the file system's name, the user's ``-o``, and ``ro`` for a
    remote: the kernel itself then refuses every change with EROFS."""
    import pyfuse3

    options = set(pyfuse3.default_options)
    options.update({f"fsname=argonfs:{name.replace(',', '%2C')}", "subtype=argonfs"})
    for opt in config.options:
        options.update(o.strip() for o in opt.split(",") if o.strip())
    if config.remote is not None:
        options.discard("rw")
        options.add("ro")
    return options


@dataclass
class _Served:
    catalog: Catalog
    #: for the mount table (fsname) and the state file
    name: str
    #: for the log
    description: str
    close: Callable[[], None] = lambda: None


def _open(config: MountConfig) -> _Served:
    """The catalog to serve, checked: fail before mounting when the repository or the
    remote is missing, unreachable or in another format."""
    if config.remote is not None:
        from argonfs.remote.snapshots import RemoteCatalog

        if config.read_log:
            raise ReadOnly("a remote mount keeps no read log (it is stored in MongoDB): drop --read-log")
        catalog = RemoteCatalog.open(config.remote, config.cache_size)
        return _Served(catalog, catalog.url, f"remote {catalog.url} (read-only, cache {remote_cache_dir(catalog.url)})", catalog.close)
    from argonfs.store import Repository
    from argonfs.store.snapshots import MongoCatalog

    repo = Repository.open(config.mongo, config.repo)
    repo.info()
    return _Served(MongoCatalog(repo), repo.db.name, f"repository {repo.db.name!r} of {repo.where}")


# ---------------------------------------------------------------------- foreground


def serve(config: MountConfig, notify_fd: int | None = None) -> None:
    """Mount and serve until unmounted or signalled.  Blocking; returns after unmount."""
    import pyfuse3
    import trio

    from argonfs.fs.operations import ArgonOperations
    from argonfs.runner import ThreadRunner

    mountpoint = check_mountpoint(config.mountpoint, nonempty=config.nonempty)
    served = _open(config)
    ops = ArgonOperations(served.catalog, ThreadRunner(config.threads), read_log=config.read_log)
    # A listing makes a few long-lived objects per document (nodes, listing pages); with
    # the default thresholds the collector runs full passes over them several times per
    # 100k-entry listing.  Start-up objects are frozen, and generation 0 is collected
    # less often (docs/benchmarks.md, "Remotes").
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    state = state_file(mountpoint)  # before mounting: resolving the path afterwards would ask ourselves
    try:
        pyfuse3.init(ops, mountpoint, fuse_options(config, served.name))
    except BaseException:
        served.close()
        raise
    ops.invalidator.start()
    key = "remote" if config.remote is not None else "repo"
    write_private(state, json.dumps({"pid": os.getpid(), "mountpoint": mountpoint, key: served.name}).encode())
    log.info("mounted %s at %s", served.description, mountpoint)
    try:
        trio.run(_main, ops, mountpoint, config, notify_fd)
    finally:
        _discard_unclosed(ops)
        _store_last_reads(ops)
        ops.invalidator.stop()
        pyfuse3.close(unmount=True)
        served.close()
        state.unlink(missing_ok=True)
        if config.ready_file:
            Path(config.ready_file).unlink(missing_ok=True)
        log.info("unmounted %s", mountpoint)


async def _main(ops: object, mountpoint: str, config: MountConfig, notify_fd: int | None) -> None:
    import pyfuse3
    import trio

    async with trio.open_nursery() as nursery:

        async def serve_requests() -> None:
            await pyfuse3.main()  # returns once unmounted (fusermount3 -u) or terminated
            nursery.cancel_scope.cancel()

        nursery.start_soon(serve_requests)
        ops.nursery = nursery  # type: ignore[attr-defined]
        if config.read_log:
            nursery.start_soon(ops.log_reads_forever)  # type: ignore[attr-defined]
        await _wait_answering(mountpoint)
        if config.ready_file:
            tmp = f"{config.ready_file}.tmp{os.getpid()}"
            Path(tmp).write_text(f"{mountpoint}\n")
            os.replace(tmp, config.ready_file)
        if notify_fd is not None:
            os.write(notify_fd, b"ready\n")
            os.close(notify_fd)
        log.info("ready: %s answers", mountpoint)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                log.info("%s: finishing requests in flight and unmounting", signal.Signals(signum).name)
                pyfuse3.terminate()
                break


async def _wait_answering(mountpoint: str) -> None:
    """The mount is usable once its root answers a stat with the FUSE root inode.  The
    stat runs in a thread; the trio thread keeps serving the request it causes."""
    import pyfuse3
    import trio

    deadline = trio.current_time() + READY_TIMEOUT
    while True:
        st = await trio.to_thread.run_sync(os.stat, mountpoint)
        if st.st_ino == pyfuse3.ROOT_INODE:
            return
        if trio.current_time() > deadline:
            raise ArgonError(f"{mountpoint} did not answer within {READY_TIMEOUT:.0f} s")
        await trio.sleep(0.05)


def _store_last_reads(ops: object) -> None:
    reads = ops.take_reads()  # type: ignore[attr-defined]
    if reads:
        try:
            ops.catalog.record_reads(reads)  # type: ignore[attr-defined]
        except ArgonError as exc:
            log.error("read log: %d entries not stored at unmount: %s", len(reads), exc)


def _discard_unclosed(ops: object) -> None:
    for path in ops.unsaved():  # type: ignore[attr-defined]
        log.warning("/%s was still open for writing at unmount; its unsaved changes are discarded", "/".join(path))


# ---------------------------------------------------------------------- background


def start(config: MountConfig, argv: list[str]) -> int:
    """Start ``serve`` detached and wait until the mount answers; return its pid.

    ``argv`` re-runs the CLI in the foreground; the child reports readiness (or dies,
    and its log says why) through a pipe."""
    mountpoint = check_mountpoint(config.mountpoint, nonempty=config.nonempty)
    logpath = log_file(mountpoint)
    read_fd, write_fd = os.pipe()
    with os.fdopen(private_fd(logpath, os.O_WRONLY | os.O_APPEND), "ab") as logf:
        env = dict(os.environ, ARGONFS_NOTIFY_FD=str(write_fd))
        if config.mongo:  # by environment: a URI may carry a password, argv is public
            env["ARGONFS_MONGO_URI"] = config.mongo
        if config.repo:
            env["ARGONFS_REPO"] = config.repo
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, pass_fds=(write_fd,), env=env, start_new_session=True)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = pipe.readline()
    if answer.strip() == b"ready":
        return proc.pid
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    tail = _last_error(logpath)
    raise ArgonError(f"the mount daemon exited ({code}) before the mount was ready: {tail} (log: {logpath})")


def _last_error(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def umount(mountpoint: str, timeout: float = STOP_TIMEOUT) -> None:
    """Unmount, then wait for the daemon (if this machine runs it) to finish."""
    path = os.path.realpath(mountpoint)
    state = state_file(path)
    pid = None
    if state.exists():
        pid = json.loads(state.read_text()).get("pid")
    if _dead_mount(path):
        log.warning("%s: the mount's daemon is gone (ENOTCONN); unmounting lazily", path)
        _lazy_unmount(path)
        state.unlink(missing_ok=True)
        return
    if not os.path.ismount(path):
        raise NotFound(f"{mountpoint!r} is not mounted")
    proc = subprocess.run(["fusermount3", "-u", path], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"fusermount3 exited {proc.returncode}"
        raise Conflict(f"cannot unmount {mountpoint!r}: {message}")
    if pid is not None:
        _wait_exit(pid, timeout)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie nobody has reaped yet does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def _wait_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    print(f"argonfs: warning: daemon {pid} still running {timeout:.0f} s after unmount", file=sys.stderr)
