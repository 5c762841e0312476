"""Protected branches: every direct write refused in every process, merges and reverts
allowed and recorded, and protection taking effect exactly when ``protect`` returns."""

from __future__ import annotations

import errno
import multiprocessing as mp

import pytest

from argonfs.errors import Protected, ReadOnly
from argonfs.store import Repository
from argonfs.store.engine import versions as v

WRITERS = 3


def _docs(repo: Repository, ref: str) -> dict[str, dict]:
    return {d.stem: d.doc for d in repo.documents(ref, "c")}


def test_direct_writes_are_refused_and_nothing_changes(repo: Repository) -> None:
    repo.put("main", "c", {"_id": 1, "v": "old"})
    repo.put("main", "d", {"_id": 1})
    assert repo.protect_branch("main") is True
    assert repo.protect_branch("main") is False  # already
    head = repo.head("main")
    writes = [
        lambda: repo.put("main", "c", {"_id": 1, "v": "new"}),
        lambda: repo.put("main", "c", {"_id": 2}),
        lambda: repo.delete("main", "c", "1"),
        lambda: repo.rename("main", "c", "1", "c", "9"),
        lambda: repo.create_collection("main", "e"),
        lambda: repo.drop_collection("main", "d"),
        lambda: repo.import_documents("main", "c", iter([{"_id": 3}])),
    ]
    for write in writes:
        with pytest.raises(Protected, match="branch 'main' is protected") as info:
            write()
        assert isinstance(info.value, ReadOnly) and info.value.errno == errno.EROFS and info.value.exit_code == 5
    assert repo.head("main") == head
    assert _docs(repo, "main") == {"1": {"_id": 1, "v": "old"}}
    assert repo.collections("main") == ["c", "d"]
    with pytest.raises(Protected, match="unprotect it before deleting"):
        repo.delete_branch("main", force=True)


def test_merge_and_revert_are_allowed_and_recorded(repo: Repository) -> None:
    repo.put("main", "c", {"_id": 1, "v": "old"})
    repo.create_branch("feature")
    repo.put("feature", "c", {"_id": 1, "v": "new"})
    repo.protect_branch("main")
    merged = repo.with_author("maintainer").merge("feature", "main", message="ship it")
    assert merged.updated == 1 and _docs(repo, "main")["1"]["v"] == "new"
    top = next(iter(repo.log("main")))
    assert (top.op, top.author) == ("merge", "maintainer")
    reverted = repo.with_author("oncall").revert("main", "2")
    assert reverted.updated == 1 and _docs(repo, "main")["1"]["v"] == "old"
    top = next(iter(repo.log("main")))
    assert (top.op, top.author) == ("revert", "oncall")
    ops = [e.op for e in repo.log("main")]
    assert "protect" in ops  # protection is part of the branch's history, with its author


def test_unprotect_allows_writes_and_listing_shows_protection(repo: Repository) -> None:
    repo.create_branch("feature")
    repo.with_author("lead").protect_branch("main")
    listed = {b.name: b.protected for b in repo.list_branches(protection=True)}
    assert listed == {"feature": False, "main": True}
    assert repo.branch("main").protected is True
    info = repo.protection("main")
    assert info is not None and info["author"] == "lead"
    assert repo.protection("feature") is None
    assert repo.unprotect_branch("main") is True
    assert repo.unprotect_branch("main") is False
    repo.put("main", "c", {"_id": 1})
    assert repo.branch("main").protected is False
    assert "1" in _docs(repo, "main")


def _warm_writer(uri: str, name: str, ready, go, q) -> None:
    """Writes once (so this process knows the branch's head and its protection), then,
    after the parent protected the branch, tries again."""
    repo = Repository.open(uri, name, author="other-process")
    repo.put("main", "c", {"_id": "before"})
    ready.set()
    go.wait(60)
    try:
        repo.put("main", "c", {"_id": "after"})
        q.put("written")
    except Protected as exc:
        q.put(f"refused: {exc}")


def test_a_process_that_wrote_before_is_refused_after_protect_returns(repo: Repository, mongo_uri: str, repo_name: str) -> None:
    ctx = mp.get_context("spawn")
    ready, go, q = ctx.Event(), ctx.Event(), ctx.Queue()
    p = ctx.Process(target=_warm_writer, args=(mongo_uri, repo_name, ready, go, q))
    p.start()
    try:
        assert ready.wait(120)
        repo.protect_branch("main")
        go.set()
        assert q.get(timeout=120).startswith("refused: branch 'main' is protected")
    finally:
        p.join(timeout=60)
        if p.is_alive():
            p.kill()
    assert set(_docs(repo, "main")) == {"before"}


def _hammer(uri: str, name: str, n: int, started, q) -> None:
    repo = Repository.open(uri, name, author=f"w{n}")
    written = 0
    try:
        while True:
            repo.put("main", "c", {"_id": f"w{n}-{written}"})
            written += 1
            if written == 3:
                started.release()
    except Protected:
        q.put(written)


def test_no_direct_write_lands_above_the_protect_record(repo: Repository, mongo_uri: str, repo_name: str) -> None:
    """Writers race protect: every write they had acknowledged sits below the protect
    record's slot, and nothing but control records sits above it."""
    ctx = mp.get_context("spawn")
    started, q = ctx.Semaphore(0), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(mongo_uri, repo_name, n, started, q)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            assert started.acquire(timeout=120)
        repo.protect_branch("main")
        written = sum(q.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    bid = repo.branch("main").id
    records = list(repo.db["versions"].find({"b": bid}, {"d": 0}).sort("s", 1))
    marker = next(r for r in records if r["op"] == "protect")
    assert [r["s"] for r in records] == list(range(1, len(records) + 1))
    assert all(r["c"] == v.COMMITS for r in records if r["s"] > marker["s"])
    assert len([r for r in records if r["c"] == "c"]) == written == len(_docs(repo, "main"))
