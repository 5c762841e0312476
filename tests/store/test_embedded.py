"""The embedded server: private to its user, on a stable address, and found again by a
long-lived Repository after it restarts or dies.  Each test runs its own server
process in its own data directory (these tests are about that server, whatever
ARGONFS_TEST_MONGO_URI says)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import signal
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pymongo
import pytest
from pymongo.errors import OperationFailure

from argonfs.errors import StoreUnavailable
from argonfs.store import Repository
from argonfs.store.db.embedded import ensure_server, server_info, stop_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _kill9(home: Path) -> None:
    info = server_info(home)
    assert info is not None
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while server_info(home) is not None:
        assert time.monotonic() < deadline, "the killed server still holds its lock"
        time.sleep(0.02)


def test_files_are_private_and_server_json_has_no_credential(embedded_home: Path) -> None:
    repo = Repository.open()
    repo.init()
    repo.put("main", "people", {"_id": "ada"})
    home = embedded_home
    assert _mode(home) == 0o700
    for name in ("embedded.json", "server.json", "server.log", "server.lock", "start.lock"):
        assert _mode(home / name) == 0o600, name
    for root, _dirs, files in os.walk(home / "db"):
        assert _mode(Path(root)) == 0o700
        for f in files:
            assert _mode(Path(root) / f) == 0o600, f
    password = json.loads((home / "embedded.json").read_text())["password"]
    assert len(password) >= 32
    assert password not in (home / "server.json").read_text()
    assert password not in repo.where


def test_world_readable_files_of_an_older_version_become_private(embedded_home: Path) -> None:
    ensure_server(embedded_home)
    stop_server(embedded_home)
    for path in [embedded_home / "server.log", *(embedded_home / "db").iterdir()]:
        path.chmod(0o644)
    (embedded_home / "db").chmod(0o755)
    ensure_server(embedded_home)
    assert _mode(embedded_home / "server.log") == 0o600
    assert _mode(embedded_home / "db") == 0o700
    assert {_mode(p) for p in (embedded_home / "db").iterdir()} == {0o600}


def test_a_client_without_the_credential_is_refused(embedded_home: Path) -> None:
    ensure_server(embedded_home)
    port = server_info(embedded_home)["port"]
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=5000) as c:
        with pytest.raises(OperationFailure) as refused:
            c.list_database_names()
        assert refused.value.code == 13
        with pytest.raises(OperationFailure):
            c["argonfs"]["branch_names"].insert_one({"_id": "intruder"})


def _intrude(home: Path, port: int) -> dict[str, object]:
    """What another user gets: the files, the wire protocol without a credential, the CLI."""
    out: dict[str, object] = {}
    for name in ("embedded.json", "server.json", "server.log", "db/WiredTiger.wt"):
        try:
            (home / name).read_bytes()
            out[name] = "read"
        except PermissionError:
            out[name] = "denied"
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=5000) as c:
        for what, op in (
            ("list", lambda: c.list_database_names()),
            ("read", lambda: c["argonfs"]["branch_names"].find_one()),
            ("insert", lambda: c["argonfs"]["intruder"].insert_one({})),
            ("drop", lambda: c["argonfs"].drop_collection("branch_names")),
        ):
            try:
                op()
                out[what] = "allowed"
            except OperationFailure as exc:
                out[what] = exc.code
    try:
        Repository.open().info()
        out["repository"] = "opened"
    except StoreUnavailable as exc:
        out["repository"] = str(exc)
    return out


def _as_nobody(fn: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run ``fn`` in a forked child as uid ``nobody``; its result comes back as JSON."""
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(w, json.dumps(fn()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        data = b""
        deadline = time.monotonic() + 60
        while chunk := _read_before(r, deadline):
            data += chunk
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return json.loads(data)
    finally:
        os.close(r)
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _read_before(fd: int, deadline: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    assert ready, "the child running as nobody did not answer in time"
    return os.read(fd, 65536)


def test_another_user_is_refused(embedded_home: Path) -> None:
    repo = Repository.open()
    repo.init()
    embedded_home.chmod(0o755)  # even with the directory open, every file is the owner's only
    port = server_info(embedded_home)["port"]
    out = _as_nobody(lambda: _intrude(embedded_home, port))
    refusal = out.pop("repository")
    assert out == {
        "embedded.json": "denied",
        "server.json": "denied",
        "server.log": "denied",
        "db/WiredTiger.wt": "denied",
        "list": 13,
        "read": 13,
        "insert": 13,
        "drop": 13,
    }
    assert "belongs to another user" in refusal and "\n" not in refusal
    assert repo.db["branch_names"].find_one({"_id": "main"}) is not None


def test_a_repository_survives_a_restart_on_the_same_address(embedded_home: Path) -> None:
    repo = Repository.open()
    repo.init()
    repo.put("main", "people", {"_id": "ada", "n": 1})
    port = server_info(embedded_home)["port"]
    stop_server(embedded_home)
    ensure_server(embedded_home)
    assert server_info(embedded_home)["port"] == port
    assert repo.get("main", "people", "ada").doc == {"_id": "ada", "n": 1}
    repo.put("main", "people", {"_id": "ada", "n": 2})
    _kill9(embedded_home)
    ensure_server(embedded_home)
    assert server_info(embedded_home)["port"] == port
    assert repo.get("main", "people", "ada").doc == {"_id": "ada", "n": 2}


def test_a_repository_restarts_a_server_that_died(embedded_home: Path) -> None:
    repo = Repository.open()
    repo.init()
    repo.put("main", "people", {"_id": "ada"})
    _kill9(embedded_home)
    try:
        repo.get("main", "people", "ada")
    except StoreUnavailable as exc:  # the call that met the dead server
        assert "started again" in str(exc)
    assert server_info(embedded_home) is not None
    assert repo.get("main", "people", "ada").doc == {"_id": "ada"}


def test_a_taken_port_gives_a_new_one(embedded_home: Path) -> None:
    ensure_server(embedded_home)
    port = server_info(embedded_home)["port"]
    stop_server(embedded_home)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old connections linger in TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        Repository.open().init()
        new = server_info(embedded_home)["port"]
    assert new != port
    assert json.loads((embedded_home / "embedded.json").read_text())["port"] == new
    assert "taken" in (embedded_home / "server.log").read_text()


def test_a_server_of_an_older_version_is_named_not_used(embedded_home: Path, procs) -> None:
    """An old server (no credential, no port in server.json) still running after an upgrade."""
    import subprocess
    import sys

    embedded_home.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); print(flush=True); time.sleep(60)",
            str(embedded_home / "server.lock"),
        ],
        stdout=subprocess.PIPE,
    )
    procs.append(holder)
    holder.stdout.readline()  # it holds the lock
    (embedded_home / "server.json").write_text(json.dumps({"uri": "mongodb://127.0.0.1:1/", "pid": holder.pid, "data": "db"}))
    with pytest.raises(StoreUnavailable, match=r"started by an older argonfs.*argonfs server stop"):
        Repository.open()
