"""revert: back to a seq, a time or a bundle, with new versions; history kept."""

from __future__ import annotations

from argonfs.errors import NotFound


def state(repo, ref):
    out = {}
    for c in repo.collections(ref):
        out[c] = {e.stem: repo.get(ref, c, e.stem).doc for e in repo.entries(ref, c)}
    return out


def test_revert_to_seq_time_and_bundle(repo):
    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(5)))
    seq = repo.head("main")
    at = next(repo.log("main")).time  # the import's commit: when its documents appeared
    snapshot = state(repo, "main")
    bundle = repo.create_bundle("main", "good")
    repo.put("main", "c", {"_id": 1, "v": 1})
    repo.delete("main", "c", "2")
    repo.put("main", "c", {"_id": 9})
    repo.put("main", "new", {"_id": "x"})
    repo.create_collection("main", "empty")
    changed = state(repo, "main")
    before = repo.head("main")
    r = repo.revert("main", str(seq))
    assert state(repo, "main") == snapshot
    assert (r.added, r.updated, r.deleted, sorted(r.dropped)) == (1, 1, 1, ["empty", "new"])
    assert repo.head("main") == r.seq and r.seq > seq  # new versions, history kept
    assert state(repo, f"main@{before}") == changed  # the reverted versions are still there
    assert all(e.txn is not None for e in list(repo.log("main"))[: r.seq - before])
    # back to the changed state (a revert can be reverted), then to the bundle, then by time
    repo.revert("main", str(before))
    assert state(repo, "main") == changed
    repo.revert("main", bundle.id)
    assert state(repo, "main") == snapshot
    repo.put("main", "c", {"_id": 0, "v": "later"})
    repo.revert("main", at.isoformat() + "Z")
    assert state(repo, "main") == snapshot
    assert repo.revert("main", bundle.id).seq is None  # already there: nothing written


def test_revert_restores_a_dropped_collection(repo):
    repo.put("main", "c", {"_id": 1})
    seq = repo.head("main")
    repo.drop_collection("main", "c")
    try:
        next(repo.entries("main", "c"))
        raise AssertionError("dropped collection still listed")
    except NotFound:
        pass
    repo.revert("main", str(seq))
    assert [e.stem for e in repo.entries("main", "c")] == ["1"]
