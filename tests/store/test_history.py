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
    # two batches: slots 1 and 1002 are their range records, which the log leaves out
    assert [(e.seq, e.op) for e in first] == [(1503, "import"), (1502, "put"), (1501, "put"), (1500, "put"), (1499, "put")]
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
