"""History: the log, and refs that travel back by seq or by time."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest

from argonfs.errors import InvalidName, NotFound


def test_log_newest_first_through_the_fork(repo):
    for i in range(3):
        repo.put("main", "c", {"_id": i, "v": 1})
    repo.create_branch("b")
    repo.put("main", "c", {"_id": 9})  # after the fork: not in b's history
    repo.put("b", "c", {"_id": 1, "v": 2})
    repo.delete("b", "c", "0")
    repo.drop_collection("b", "c")
    log = list(repo.log("b"))
    assert [(e.branch, e.seq, e.op, e.stem) for e in log] == [
        ("b", 3, "drop", None),
        ("b", 2, "del", "0"),
        ("b", 1, "put", "1"),
        ("main", 3, "put", "2"),
        ("main", 2, "put", "1"),
        ("main", 1, "put", "0"),
    ]
    assert all(e.author == "tester" for e in log)
    assert [e.seq for e in repo.log("b@1")] == [1, 3, 2, 1]
    # one document (markers of its collection included), and one collection
    assert [(e.branch, e.seq, e.op) for e in repo.log("b", "c", "1")] == [("b", 3, "drop"), ("b", 1, "put"), ("main", 2, "put")]
    assert [e.seq for e in repo.log("main", "c")] == [4, 3, 2, 1]
    with pytest.raises(InvalidName):
        list(repo.log("b", None, "1"))


def test_log_pages_from_the_top_of_a_long_history(repo):
    repo.import_documents("main", "c", ({"_id": i} for i in range(1500)))
    first = list(itertools.islice(repo.log("main"), 5))
    # two batches: slots 1 and 1002 are their range records, which the log leaves out;
    # the import's versions are all visible from its commit, seq 1503
    assert [(e.slot, e.op) for e in first] == [(1503, "import"), (1502, "put"), (1501, "put"), (1500, "put"), (1499, "put")]
    assert {e.seq for e in first} == {1503}
    assert sum(1 for _ in repo.log("main")) == 1501


def test_time_travel_by_time(repo):
    docs = []
    for v in range(4):
        docs.append(repo.put("main", "c", {"_id": "x", "v": v}))
        time.sleep(0.01)
    for d in docs:
        at = d.time.isoformat() + "Z"
        assert repo.get(f"main@{at}", "c", "x").doc["v"] == d.doc["v"]
        assert repo.resolve(f"main@{at}").seq == d.seq
    between = docs[1].time + (docs[2].time - docs[1].time) / 2
    assert repo.get(f"main@{between.isoformat()}", "c", "x").doc["v"] == 1
    # other zones are converted to UTC
    plus_two = (docs[2].time + timedelta(hours=2)).isoformat() + "+02:00"
    assert repo.get(f"main@{plus_two}", "c", "x").doc["v"] == 2
    # before the first write the branch is empty; before the branch existed, an error
    created = repo.branch("main").created
    assert repo.resolve(f"main@{created.isoformat()}").seq == 0
    with pytest.raises(NotFound, match="did not exist yet"):
        repo.resolve("main@2001-01-01")
    # a branch forked from main reads main at the fork point
    repo.create_branch("b", f"main@{docs[1].time.isoformat()}")
    assert repo.get("b", "c", "x").doc["v"] == 1
    with pytest.raises(InvalidName):
        repo.resolve("main@not-a-time")


@pytest.mark.parametrize("bulk_min", [0, 3], ids=["records", "bulk"])
def test_every_logged_version_of_a_batch_reads_back_by_what_the_log_prints(repo, bulk_min):
    """A batch (``apply``, as a capture writes it) holds several versions of one
    document: each is listed with the seq from which it is visible, which shows it, and
    with its slot, which reads it back, value for value."""
    from argonfs.store.repo.model import Change

    repo.put("main", "c", {"_id": "n", "v": 0})
    changes = [Change("put", "c", "n", {"_id": "n", "v": i}) for i in range(1, 6)]
    changes.insert(2, Change("put", "c", "m", {"_id": "m"}))  # another document between them
    commit = repo.apply("main", changes, kind="capture", bulk_min=bulk_min)
    repo.put("main", "c", {"_id": "n", "v": 6})
    log = [e for e in repo.log("main") if e.collection == "c" and e.stem == "n"]
    if not bulk_min:  # a bulk write's listing names only the newest version of a name in it
        assert list(repo.log("main", "c", "n")) == log
    assert [e.seq for e in log] == [commit + 1, *[commit] * 5, 1]
    assert len({e.slot for e in log}) == 7 and log[-1].slot == 1
    assert [repo.get_version(e.branch, "c", "n", e.slot).doc["v"] for e in log] == [6, 5, 4, 3, 2, 1, 0]
    for e in log:
        # the version is in the view at its seq and in none before it
        assert e.slot in [x.slot for x in repo.log(f"main@{e.seq}")]
        assert e.slot not in [x.slot for x in repo.log(f"main@{e.seq - 1}")]
        assert repo.get_version(f"main@{e.seq}", "c", "n", e.slot).doc["v"] == repo.get_version("main", "c", "n", e.slot).doc["v"]
        with pytest.raises(NotFound):  # not visible before its seq
            repo.get_version(f"main@{e.seq - 1}", "c", "n", e.slot)
    assert repo.get(f"main@{commit}", "c", "n").doc["v"] == 5
    assert repo.get(f"main@{commit - 1}", "c", "n").doc["v"] == 0  # inside the batch: before it
    with pytest.raises(NotFound):  # a slot of another document
        repo.get_version("main", "c", "n", next(e.slot for e in repo.log("main", "c", "m") if e.op == "put"))


def test_a_version_of_an_ancestor_is_read_through_its_branch(repo):
    from argonfs.store.repo.model import Change

    repo.apply("main", [Change("put", "c", "n", {"_id": "n", "v": i}) for i in range(3)], kind="capture")
    repo.create_branch("b")
    repo.put("b", "c", {"_id": "n", "v": 9})
    log = list(repo.log("b", "c", "n"))
    assert [(e.branch, repo.get_version(e.branch, "c", "n", e.slot).doc["v"]) for e in log] == [("b", 9), ("main", 2), ("main", 1), ("main", 0)]
