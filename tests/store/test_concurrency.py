"""Several real processes writing one branch at once: no lost write, no gap."""

from __future__ import annotations

import multiprocessing as mp

from argonfs.store import Repository
from argonfs.store.engine import packs

WRITERS = 4
WRITES = 25


def _writer(uri: str, name: str, n: int, q) -> None:
    repo = Repository.open(uri, name, author=f"writer{n}")
    seqs = []
    for i in range(WRITES):
        # half the writes hit a key every writer also writes, half a key of their own
        key = f"shared{i % 5}" if i % 2 else f"w{n}-{i}"
        seqs.append(repo.put("main", "c", {"_id": key, "writer": n, "i": i}).seq)
    q.put(seqs)


def test_concurrent_writers_never_lose_a_write_or_leave_a_gap(repo, mongo_uri: str, repo_name: str) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(mongo_uri, repo_name, n, q)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    claimed = sorted(s for seqs in results for s in seqs)
    assert claimed == list(range(1, WRITERS * WRITES + 1))  # every write got its own slot
    stored = sorted(r["s"] for r in repo.db["versions"].find({"b": repo.branch("main").id}, {"s": 1}))
    assert stored == claimed  # dense 1..n, nothing lost
    entries = {e.stem for e in repo.entries("main", "c")}
    own = {f"w{n}-{i}" for n in range(WRITERS) for i in range(0, WRITES, 2)}
    assert own | {f"shared{i}" for i in range(5)} == entries
    # each shared key shows the write that took the highest slot
    for i in range(5):
        newest = repo.db["versions"].find_one({"k": f"shared{i}"}, sort=[("s", -1)])
        assert repo.get("main", "c", f"shared{i}").seq == newest["s"]


def _importer(uri: str, name: str, n: int, q) -> None:
    repo = Repository.open(uri, name, author=f"importer{n}")
    counts = repo.import_documents("main", f"c{n}", ({"_id": i, "by": n} for i in range(300)), batch_size=40)
    q.put(counts.added)


def test_concurrent_batch_imports_interleave_densely(repo, mongo_uri: str, repo_name: str) -> None:
    """Bulk batches of three importers interleave: each takes a range of slots whose
    records are in packs, and the ranges, the other records and the commits
    fill the branch's slots exactly once."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_importer, args=(mongo_uri, repo_name, n, q)) for n in range(3)]
    for p in procs:
        p.start()
    assert sorted(q.get(timeout=120) for _ in procs) == [300, 300, 300]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    bid = repo.branch("main").id
    rows = [r["s"] for name in ("versions", "bulk_versions") for r in repo.db[name].find({"b": bid}, {"s": 1})]
    stored = sorted(rows + [r["s"] for r in packs.all_records(repo.db, {"b": bid})])
    ranges = list(repo.db["versions"].find({"b": bid, "op": "range"}))
    assert len(ranges) == 3 * 8  # a range record per batch of 40
    assert sum(r["rn"] for r in ranges) == 900
    assert stored == list(range(1, 900 + 24 + 3 + 1))  # documents, range records and 3 commits, dense
    assert repo.head("main") == 927
    for n in range(3):
        assert [e.stem for e in repo.entries("main", f"c{n}")] == sorted(str(i) for i in range(300))
