"""Captures as real processes: SIGKILL between append and commit, SIGTERM, two captures
of one branch, a source that goes down, a source whose oplog lost the resume point."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymongo
import pytest

from argonfs.capture import records
from tests.capture.conftest import Source, branch_state

DEADLINE = 60.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = DEADLINE, every: float = 0.01) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def record(repo: Any) -> dict[str, Any]:
    found = [r for r in records(repo.db) if r["_id"] == "live"]
    return found[0] if found else {}


def finish(p: subprocess.Popen, timeout: float = DEADLINE) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def versions_per_key(repo: Any, collection: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in repo.log("live", collection=collection):
        if e.stem is not None:
            counts[e.stem] = counts.get(e.stem, 0) + 1
    return counts


def test_sigkill_between_append_and_commit_loses_and_repeats_nothing(repo, source: Source, spawn) -> None:
    source.db.c.insert_many([{"_id": i, "n": 0} for i in range(3000)])
    # 1. killed during the first copy, after its first records were appended
    p = spawn("capture", source.uri, "--branch", "live", "--json")
    wait_for("the copy's first records", lambda: record(repo).get("txn") and repo.head("live") > 1000)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=DEADLINE)
    assert record(repo).get("pos") is None
    assert repo.collections("live") == []  # nothing of the copy is visible

    # 2. restarted: the copy is taken again and committed; then killed inside a batch of 3000 events
    p = spawn("capture", source.uri, "--branch", "live", "--json", "--batch-size", "3000", "--batch-time", "10")
    wait_for("the first copy's commit", lambda: record(repo).get("pos") is not None)
    committed = record(repo)["slot"]
    source.db.c.update_many({}, {"$inc": {"n": 1}})  # 3000 update events
    wait_for("the batch's records", lambda: record(repo).get("txn") and repo.head("live") > committed + 1500)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=DEADLINE)
    assert repo.commit_record("live", record(repo)["txn"]) is None  # killed before the commit
    assert {d.doc["n"] for d in repo.documents("live", "c")} == {0}

    # 3. restarted once more: it resumes after the last commit
    p = spawn("capture", source.uri, "--branch", "live", "--once")
    code, _, err = finish(p)
    assert code == 0, err
    assert branch_state(repo, "live") == source.state()
    assert set(versions_per_key(repo, "c").values()) == {2}  # the copy and the update: each event once


def test_sigterm_finishes_the_batch_in_flight(repo, source: Source, spawn) -> None:
    source.db.c.insert_one({"_id": "seed"})
    p = spawn("capture", source.uri, "--branch", "live", "--json")
    wait_for("the first copy", lambda: record(repo).get("pos") is not None)
    source.db.c.insert_many([{"_id": i} for i in range(200)])
    wait_for("a batch being read", lambda: record(repo).get("events", 0) > 0 or record(repo).get("txn"), every=0.005)
    p.send_signal(signal.SIGTERM)
    code, out, err = finish(p)
    assert code == 0, err
    assert record(repo)["state"] == "stopped"
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["event"] == "copy" and all(x["event"] == "batch" for x in lines[1:])
    # what it committed is a prefix of the source's writes, and a restart completes it
    done = sum(x["events"] for x in lines[1:])
    assert len(list(repo.entries("live", "c"))) == 1 + done
    code, _, err = finish(spawn("capture", source.uri, "--branch", "live", "--once"))
    assert code == 0, err
    assert branch_state(repo, "live") == source.state()


def test_one_capture_per_branch(repo, source: Source, spawn) -> None:
    source.db.c.insert_one({"_id": 1})
    first = spawn("capture", source.uri, "--branch", "live")
    wait_for("the first capture", lambda: record(repo).get("state") == "following")
    code, _, err = finish(spawn("capture", source.uri, "--branch", "live", "--once"))
    assert code == 6 and "being captured by pid" in err
    code, out, err = finish(spawn("capture", "list", "--json"))
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["branch"], row["state"], row["source"]) == ("live", "following", source.uri)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=DEADLINE)
    # the owner is gone: a new capture takes the branch over at once
    source.db.c.insert_one({"_id": 2})
    code, _, err = finish(spawn("capture", source.uri, "--branch", "live", "--once"))
    assert code == 0, err
    assert branch_state(repo, "live") == source.state()


@pytest.fixture
def own_source() -> Iterator[Callable[..., Any]]:
    """Start a SecantusDB server of the test's own (stopped afterwards); ``start(port=,
    path=, **settings)`` starts it again on the same port and data."""
    from secantus import SecantusDBServer

    servers: list[Any] = []
    tmp = tempfile.TemporaryDirectory(prefix="argonfs-test-source-")

    def start(port: int = 0, **settings: Any) -> Any:
        server = SecantusDBServer(host="127.0.0.1", port=port, storage_path=tmp.name, **settings)
        server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for s in servers:
            s.stop()
        tmp.cleanup()


def test_a_source_that_goes_down_is_retried_and_nothing_partial_shows(repo, spawn, own_source) -> None:
    server = own_source()
    uri = f"{server.uri.rstrip('/')}/app"
    client: pymongo.MongoClient = pymongo.MongoClient(server.uri)
    client.app.c.insert_many([{"_id": i} for i in range(10)])
    p = spawn("capture", uri, "--branch", "live", "--json")
    wait_for("the first copy", lambda: record(repo).get("pos") is not None)
    port = server.port
    client.close()
    server.stop()
    wait_for("the capture to notice", lambda: record(repo).get("state") == "source-down", timeout=90)
    assert "retrying" in record(repo)["message"]
    server = own_source(port=port)
    client = pymongo.MongoClient(server.uri)
    client.app.c.insert_many([{"_id": i} for i in range(10, 20)])
    wait_for("the capture to resume", lambda: len(list(repo.entries("live", "c"))) == 20, timeout=90, every=0.2)
    p.send_signal(signal.SIGTERM)
    code, out, err = finish(p)
    assert code == 0, err
    assert "retrying" in err
    assert any(json.loads(line)["event"] == "retry" for line in out.splitlines())
    client.close()


def test_history_lost_is_never_resumed_silently(repo, spawn, own_source) -> None:
    server = own_source(oplog_max_entries=20)
    uri = f"{server.uri.rstrip('/')}/app"
    client: pymongo.MongoClient = pymongo.MongoClient(server.uri)
    db = client.app
    db.c.insert_many([{"_id": i, "v": 0} for i in range(30)])
    code, _, err = finish(spawn("capture", uri, "--branch", "live", "--once"))
    assert code == 0, err
    head = repo.head("live")
    for i in range(10):
        db.c.update_one({"_id": i}, {"$set": {"v": 1}})
    db.c.delete_many({"_id": {"$gte": 25}})
    for i in range(40):
        db.other.insert_one({"_id": i})
    client.admin.command("secantusAdmin.pruneOplog")
    code, _, err = finish(spawn("capture", uri, "--branch", "live", "--once"))
    assert code == 10 and "--resync" in err, err
    assert repo.head("live") == head  # nothing applied
    assert record(repo)["state"] == "history-lost"
    code, _, err = finish(spawn("capture", uri, "--branch", "live", "--once"))
    assert code == 10  # still refused without --resync
    code, _, err = finish(spawn("capture", uri, "--branch", "live", "--once", "--resync"))
    assert code == 0, err
    assert branch_state(repo, "live") == {n: {d["_id"]: d for d in db[n].find()} for n in ("c", "other")}
    written = [e for e in repo.log("live") if e.seq > head and e.stem is not None]
    assert len(written) == 10 + 5 + 40  # only what differs: updates, deletes, the new collection
    assert len({e.txn for e in written}) == 1  # as one commit
    client.close()
