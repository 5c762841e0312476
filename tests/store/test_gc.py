"""Garbage collection: what it reclaims, what it keeps, and that readers and writers
running at the same time see no document change."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import time
from datetime import timedelta

import pytest

from argonfs.errors import Conflict, NotFound
from argonfs.store import Repository
from argonfs.store.engine import packs
from argonfs.store.engine import versions as v

NOW = timedelta(0)


def _matches(rec: dict, q: dict) -> bool:
    """The few query shapes these tests use, for records of packs."""
    for key, want in q.items():
        if isinstance(want, dict) and "$exists" in want:
            if (key in rec) != want["$exists"]:
                return False
        elif isinstance(want, dict) and "$regex" in want:
            if key not in rec or not re.search(want["$regex"], rec[key]):
                return False
        elif rec.get(key) != want:
            return False
    return True


def _records(repo: Repository, q: dict, fields: dict | None = None) -> list[dict]:
    """Version records of every kind: ``versions``, and the bulk writes' records, in
    ``bulk_versions`` and in packs."""
    rows = [r for name in ("versions", v.BULK) for r in repo.db[name].find(q, fields)]
    return rows + [r for r in packs.all_records(repo.db) if _matches(r, q)]


def _count(repo: Repository, q: dict) -> int:
    return len(_records(repo, q))


def _crashing_import(uri: str, name: str) -> None:
    """Import into main and die (SIGKILL) while producing the 25th document: two
    batches of 10 are stored, tagged, and never committed."""
    repo = Repository.open(uri, name, author="crasher")

    def docs():
        for i in range(100):
            if i == 24:  # once the import's appending thread has stored the second batch
                deadline = time.monotonic() + 30
                while len(_records(repo, {"k": {"$regex": "^crash"}})) < 20 and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(os.getpid(), signal.SIGKILL)
            yield {"_id": f"crash{i}", "payload": "x" * 100}

    repo.import_documents("main", "c", docs(), batch_size=10)


def _crash_an_import(uri: str, name: str) -> None:
    p = mp.get_context("spawn").Process(target=_crashing_import, args=(uri, name))
    p.start()
    p.join(timeout=120)
    assert p.exitcode == -signal.SIGKILL


def _snapshot(repo: Repository, ref: str) -> dict[tuple[str, str], bytes]:
    view = repo.pin(ref)
    return {(c, d.stem): d.rendered for c in repo.collections(view) for d in repo.documents(view, c)}


def _build(repo: Repository, uri: str, name: str) -> dict[str, object]:
    """main with a committed import and a crashed one; ``tmp`` read by a fork at 3 and
    a bundle at 8, then deleted; ``gone`` deleted with nothing reaching it."""
    repo.import_documents("main", "c", ({"_id": i, "v": i} for i in range(10)))
    _crash_an_import(uri, name)
    repo.create_branch("tmp")
    for i, key in enumerate(["k0", "k1", "k2", "k0", "k1", "k1", "k3", "k4", "k0", "k5"], start=1):
        repo.put("tmp", "t", {"_id": key, "at": i})  # slot i of tmp
        if i == 3:
            repo.create_branch("keep", "tmp@3")
        if i == 8:
            bundle = repo.create_bundle("tmp", "at 8")
    repo.delete_branch("tmp", force=True)
    repo.create_branch("gone")
    for i in range(4):
        repo.put("gone", "g", {"_id": i, "payload": "y" * 50})
    repo.delete_branch("gone")
    tmp = repo.bundle(bundle.id).branch_id
    expected = {v.slot_id(tmp, s) for s in (5, 9, 10)}  # k1@5 superseded before 8; 9, 10 above 8
    expected |= {r["_id"] for r in _records(repo, {"c": "g"}, {"_id": 1})}
    expected |= {r["_id"] for r in _records(repo, {"k": {"$regex": "^crash"}}, {"_id": 1})}
    assert len(expected) == 3 + 4 + 20
    return {"bundle": bundle.id, "expected": expected}


def test_gc_reclaims_exactly_the_unreachable_versions_and_keeps_slots(repo: Repository, mongo_uri: str, repo_name: str) -> None:
    built = _build(repo, mongo_uri, repo_name)
    before = {ref: _snapshot(repo, ref) for ref in ("main", "keep", built["bundle"])}
    count = _count(repo, {})

    dry = repo.gc(dry_run=True, min_age=NOW, grace=NOW)
    assert dry.total_records == 27 and len(dry.aborted) == 1
    assert _count(repo, {"gc": {"$exists": True}}) == 0
    assert _count(repo, {}) == count  # a dry run writes nothing

    report = repo.gc(min_age=NOW, grace=NOW)
    assert report.records == {"transactions": 20, "deleted branches": 7}
    blanked = _records(repo, {"gc": {"$exists": True}})
    assert {r["_id"] for r in blanked} == built["expected"]
    assert report.total_bytes == sum(r["z"] for r in blanked) > 20 * 100
    assert all("d" not in r and {"b", "s", "c", "k", "op", "z", "h"} <= set(r) for r in blanked)
    # every slot is still there, plus the abort record
    assert _count(repo, {}) == count + 1
    for bid in repo.db["versions"].distinct("b"):
        seqs = sorted(r["s"] for r in _records(repo, {"b": bid}, {"s": 1}))
        assert seqs == list(range(1, len(seqs) + 1))
    assert {ref: _snapshot(repo, ref) for ref in before} == before
    assert next(e.op for e in repo.log("main")) == "abort"
    again = repo.gc(min_age=NOW, grace=NOW)
    assert again.total_records == 0 and again.aborted == []


def test_deleted_branches_wait_for_the_grace_period(repo: Repository) -> None:
    repo.create_branch("gone")
    repo.put("gone", "g", {"_id": 1})
    repo.delete_branch("gone")
    report = repo.gc()  # default grace: an hour
    assert report.total_records == 0 and [name for name, _ in report.waiting] == ["gone"]
    assert repo.gc(grace=NOW).total_records == 1


def test_an_aborted_transaction_can_never_commit(repo: Repository) -> None:
    def docs():
        for i in range(30):
            if i == 15:  # the first batch is stored (by the import's appending thread): gc finds it idle and aborts it
                deadline = time.monotonic() + 30
                while len(list(packs.all_records(repo.db))) < 10 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert repo.gc(min_age=NOW).aborted
            yield {"_id": i}

    with pytest.raises(Conflict, match="aborted by 'argonfs gc'"):
        repo.import_documents("main", "c", docs(), batch_size=10)
    with pytest.raises(NotFound):
        list(repo.entries("main", "c"))  # nothing of it is visible
    assert repo.gc(min_age=NOW).records["transactions"] == 20  # the batches after the abort too
    assert _count(repo, {"c": "c", "gc": {"$exists": True}}) == 30


def test_a_view_of_a_reclaimed_branch_says_so(repo: Repository) -> None:
    repo.create_branch("gone")
    repo.put("gone", "g", {"_id": 1})
    view = repo.pin("gone")
    repo.delete_branch("gone")
    repo.gc(grace=NOW)
    with pytest.raises(NotFound, match="reclaimed by 'argonfs gc'"):
        repo.get(view, "g", "1")


# ---------------------------------------------------------------------- under load


def _writer(uri: str, name: str, stop, progress, q) -> None:
    repo = Repository.open(uri, name, author="writer")
    written = {}
    i = 0
    while not stop.is_set():
        branch = ("main", "keep")[i % 2]
        doc = {"_id": f"w{i}", "i": i}
        repo.put(branch, "live", doc)
        if i % 5 == 4:
            repo.delete(branch, "live", f"w{i - 2}")
            written.pop((("main", "keep")[(i - 2) % 2], f"w{i - 2}"), None)
        written[(branch, f"w{i}")] = i
        i += 1
        progress.value = i
    q.put(written)


def _reader(uri: str, name: str, refs: list[str], expected: dict, stop, rounds, q) -> None:
    repo = Repository.open(uri, name)
    mismatches = []
    while not stop.is_set():
        for ref in refs:
            view = repo.pin(ref)
            got = {(c, d.stem): d.rendered for c in repo.collections(view) for d in repo.documents(view, c)}
            if got != expected[ref]:
                mismatches.append(ref)
        rounds.value += 1
    q.put(mismatches)


def _wait_for(value, target: int, procs) -> None:
    import time

    deadline = time.monotonic() + 120
    while value.value < target:
        assert all(p.is_alive() for p in procs), "a helper process died"
        assert time.monotonic() < deadline, "a helper process made no progress"
        time.sleep(0.01)


def test_gc_while_a_writer_and_a_reader_run(repo: Repository, mongo_uri: str, repo_name: str) -> None:
    built = _build(repo, mongo_uri, repo_name)
    refs = [f"main@{repo.head('main')}", f"keep@{repo.head('keep')}", built["bundle"]]
    expected = {ref: _snapshot(repo, ref) for ref in refs}
    ctx = mp.get_context("spawn")
    stop, q = ctx.Event(), ctx.Queue()
    progress, rounds = ctx.Value("i", 0), ctx.Value("i", 0)
    procs = [
        ctx.Process(target=_writer, args=(mongo_uri, repo_name, stop, progress, q)),
        ctx.Process(target=_reader, args=(mongo_uri, repo_name, refs, expected, stop, rounds, q)),
    ]
    for p in procs:
        p.start()
    try:
        _wait_for(progress, 5, procs)
        _wait_for(rounds, 1, procs)
        writes_before, rounds_before = progress.value, rounds.value
        report = repo.gc(min_age=NOW, grace=NOW)
        _wait_for(progress, writes_before + 5, procs)  # the writer went on during and after gc
        _wait_for(rounds, rounds_before + 2, procs)  # a whole read round after gc finished
        stop.set()
        results = [q.get(timeout=120) for _ in procs]
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    written = next(r for r in results if isinstance(r, dict))
    mismatches = next(r for r in results if isinstance(r, list))
    assert report.total_records == 27
    assert mismatches == []
    for (branch, stem), i in written.items():
        assert repo.get(branch, "live", stem).doc == {"_id": stem, "i": i}
    live = {(b, e.stem) for b in ("main", "keep") for e in repo.entries(b, "live")}
    assert live == set(written)
    assert {ref: _snapshot(repo, ref) for ref in refs} == expected
