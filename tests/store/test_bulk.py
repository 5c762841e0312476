"""Bulk writes (versions.append_bulk, store/engine/bulk.py): an import's records carry no entry
in the key index, and every reader still finds them, by slot and by name."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argonfs.store import Repository
from argonfs.store.engine import bulk, packs
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import versions as v
from argonfs.store.repo import documents as d
from argonfs.store.repo import imports
from argonfs.store.repo.model import Change


def _forget_checkpoints(repo: Repository) -> None:
    """Make readers go through the key index and the bulk listings."""
    repo.db[cp.HEADS].delete_many({})
    repo.db[cp.CHUNKS].delete_many({})


def test_imported_documents_are_read_without_the_key_index(repo: Repository, mongo_uri: str) -> None:
    repo.put("main", "c", {"_id": 3, "v": "put before"})
    repo.import_documents("main", "c", ({"_id": i, "v": i} for i in range(40)), batch_size=7)
    repo.put("main", "c", {"_id": 5, "v": "put after"})
    repo.delete("main", "c", "6")
    assert repo.db["versions"].count_documents({"c": "c"}) == 3  # the two puts and the delete
    assert sum(1 for r in packs.all_records(repo.db) if r["c"] == "c") == 40  # the batches' packs
    assert repo.db[v.BULK].count_documents({}) == 0
    _forget_checkpoints(repo)
    fresh = Repository.open(mongo_uri, repo.db.name, author="reader")
    expected = {str(i): i for i in range(40) if i != 6} | {"5": "put after"}
    assert {doc.stem: doc.doc["v"] for doc in fresh.documents("main", "c")} == expected
    assert [e.stem for e in fresh.entries("main", "c")] == sorted(expected)
    assert [e.stem for e in fresh.entries("main", "c", after="30")] == sorted(k for k in expected if k > "30")
    assert fresh.get("main", "c", "3").doc["v"] == 3  # the import's version is newer than the put
    assert fresh.stat("main", "c", "12").size == len(fresh.get("main", "c", "12").rendered)
    assert [e.op for e in fresh.log("main", "c", "5")] == ["put", "put"]
    assert fresh.collection_exists("main", "c")
    # a fork reads the imported documents through its parent layer
    fresh.create_branch("f")
    fresh.put("f", "c", {"_id": 7, "v": "in fork"})
    assert fresh.get("f", "c", "8").doc["v"] == 8 and fresh.get("f", "c", "7").doc["v"] == "in fork"
    changes = {(c.stem, c.change) for c in fresh.diff("main", "f", "c")}
    assert changes == {("7", "modified")}


def test_an_import_into_a_fork_is_read_at_every_snapshot(repo: Repository, mongo_uri: str) -> None:
    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(10)))
    repo.create_branch("f")
    before = repo.create_bundle("f", "before")
    repo.import_documents("f", "c", ({"_id": i, "v": 1} for i in range(5, 15)), batch_size=4)
    after = repo.create_bundle("f", "after")
    _forget_checkpoints(repo)
    fresh = Repository.open(mongo_uri, repo.db.name, author="reader")
    assert {doc.stem: doc.doc["v"] for doc in fresh.documents(before.id, "c")} == {str(i): 0 for i in range(10)}
    assert {doc.stem: doc.doc["v"] for doc in fresh.documents(after.id, "c")} == {str(i): int(i >= 5) for i in range(15)}
    assert {doc.stem: doc.doc["v"] for doc in fresh.documents("main", "c")} == {str(i): 0 for i in range(10)}


def test_a_checkpoint_taken_while_an_import_runs_names_it(repo: Repository, mongo_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing checkpoint at a slot between an import's first range record and its
    commit cannot hold the import's records (they are not visible there) and lies above
    them: a later view must not use it.  It names the import as pending."""
    monkeypatch.setattr(d, "CHECKPOINT_AFTER", 3)
    other = Repository.open(mongo_uri, repo.db.name, author="other")
    calls = []

    def progress(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            for i in range(5):
                other.put("main", "c", {"_id": f"o{i}"})
            assert len(list(other.entries("main", "c"))) == 5  # writes a checkpoint here
            assert other.db[cp.HEADS].count_documents({}) == 1

    repo.import_documents("main", "c", ({"_id": i} for i in range(8)), batch_size=4, progress=progress)
    during = other.db[cp.HEADS].find_one({}, sort=[("s", 1)])
    assert during["p"] and during["p"] == [txn for txn in during["p"] if repo.db[bulk.HEADS].find_one({"x": txn})]
    # without the import's own checkpoint, a view of the head must not take the one above
    repo.db[cp.HEADS].delete_many({"_id": {"$ne": during["_id"]}})
    fresh = Repository.open(mongo_uri, repo.db.name, author="reader")
    assert {e.stem for e in fresh.entries("main", "c")} == {str(i) for i in range(8)} | {f"o{i}" for i in range(5)}


def test_gc_reclaims_a_deleted_branch_s_imported_versions(repo: Repository) -> None:
    repo.create_branch("tmp")
    repo.import_documents("tmp", "c", ({"_id": i, "pad": "x" * 20} for i in range(12)), batch_size=5)
    repo.delete_branch("tmp", force=True)
    report = repo.gc(grace=timedelta(0))
    assert report.records["deleted branches"] == 12
    assert sum(1 for r in packs.all_records(repo.db) if "gc" in r and "d" not in r) == 12


def _state(repo: Repository, ref: str) -> dict[str, dict[str, tuple[object, int]]]:
    out = {}
    for c in repo.collections(ref):
        out[c] = {doc.stem: (doc.doc, repo.stat(ref, c, doc.stem).size) for doc in repo.documents(ref, c)}
    return out


@given(
    changes=st.lists(
        st.one_of(
            st.tuples(st.just(v.PUT), st.sampled_from("ab"), st.integers(0, 6), st.integers(-1000, 1000)),
            st.tuples(st.just(v.DELETE), st.sampled_from("ab"), st.integers(0, 6), st.just(0)),
            st.tuples(st.just(v.DROP), st.sampled_from("ab"), st.just(0), st.just(0)),
        ),
        max_size=30,
    ),
    split=st.integers(1, 30),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_apply_with_bulk_runs_reads_as_without(repo: Repository, mongo_uri: str, changes, split: int) -> None:
    """The same changes applied with every run of puts as a bulk write (bulk_min=1) and
    without: every reader, in a fresh process with no checkpoints, sees the same
    documents at the commit, in one transaction or two, and the same history of each."""
    tag = uuid.uuid4().hex[:6]
    plain, bulky = f"p{tag}", f"b{tag}"
    for name in (plain, bulky):
        repo.create_branch(name, empty=True)
        repo.put(name, "a", {"_id": "seed"})

    def as_changes(part):
        for op, c, i, val in part:
            yield Change(op, c, str(i), {"_id": i, "v": val}) if op == v.PUT else Change(op, c, str(i) if op == v.DELETE else "")

    for part in (changes[:split], changes[split:]):
        repo.apply(plain, as_changes(part), kind="test", batch_size=4)
        repo.apply(bulky, as_changes(part), kind="test", batch_size=4, bulk_min=1)
    _forget_checkpoints(repo)
    fresh = Repository.open(mongo_uri, repo.db.name, author="reader")
    assert _state(fresh, bulky) == _state(fresh, plain)
    for c in "ab":
        for i in range(7):
            assert _per_txn(fresh.log(bulky, c, str(i))) == _per_txn(fresh.log(plain, c, str(i)))


def _per_txn(log) -> list[str]:
    """A document's history as the ops of the newest version per transaction: a bulk
    listing holds a name's newest entry of its write (versions of a name that one
    transaction overwrote were never visible)."""
    seen, out = set(), []
    for e in log:
        if e.txn is None or e.txn not in seen:
            out.append(e.op)
        seen.add(e.txn)
    return out


def test_the_quick_check_of_a_re_import_sees_writes_during_and_after_it(
    repo: Repository, mongo_uri: str, repo_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Repository.open(mongo_uri, repo_name, author="other")
    monkeypatch.setattr(imports, "MAX_SLOTS", 6)  # the import's 30 bulk slots are not read, its 3 range records and commit are

    def docs(during: bool):
        for i in range(30):
            if during and i == 15:  # another writer changes a document the import compared already
                other.put("main", "c", {"_id": 3, "v": "changed during the import"})
            yield {"_id": i, "v": i}

    repo.import_documents("main", "c", docs(False), batch_size=10, fingerprint="fp")
    assert repo.unchanged_import("main", "c", "fp") == 30
    assert repo.unchanged_import("main", "c", "another") is None
    repo.put("main", "d", {"_id": 1})  # another collection: no matter
    assert repo.unchanged_import("main", "c", "fp") == 30
    repo.import_documents("main", "c", docs(True), batch_size=10, fingerprint="fp")
    assert repo.unchanged_import("main", "c", "fp") is None  # the import's compare missed that write
    repo.import_documents("main", "c", docs(False), batch_size=10, fingerprint="fp")
    assert repo.get("main", "c", "3").doc == {"_id": 3, "v": 3}
    assert repo.unchanged_import("main", "c", "fp") == 30
    repo.delete("main", "c", "4")
    assert repo.unchanged_import("main", "c", "fp") is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 9), st.booleans()), min_size=1, max_size=6))
def test_the_head_is_found_over_runs_of_ranges(repo: Repository, imports: list[tuple[int, int, bool]]) -> None:
    """Imports of many equal batches (whose ranges the head search strides over), of
    unequal ones, and single puts between them: a fresh search finds the head, from
    nothing and from every slot below it that is a top."""
    branch = f"h{uuid.uuid4().hex[:6]}"
    repo.create_branch(branch, "main@0")
    for n, batch, put in imports:
        repo.import_documents(branch, "c", ({"_id": f"{n}-{i}"} for i in range(n)), batch_size=batch)
        if put:
            repo.put(branch, "c", {"_id": f"put-{n}"})
    bid = repo.resolve(branch).branch_id
    slots = sorted(r["s"] + r.get("rn", 0) for r in repo.db["versions"].find({"b": bid}, {"s": 1, "rn": 1}))
    assert v.head(repo._versions, bid) == slots[-1]
    for known in (0, *slots[:: max(1, len(slots) // 10)]):
        assert v.head(repo._versions, bid, known) == slots[-1]


def test_the_head_search_strides_over_an_import_s_ranges(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.import_documents("main", "c", ({"_id": i} for i in range(1000)), batch_size=4)  # 250 ranges
    bid = repo.resolve("main").branch_id
    rounds = []
    filled = v._filled
    monkeypatch.setattr(v, "_filled", lambda *a: rounds.append(1) or filled(*a))
    assert v.head(repo._versions, bid) == 250 * 5 + 1  # the ranges, their slots and the commit
    assert len(rounds) <= 12  # one round per range without the strides
