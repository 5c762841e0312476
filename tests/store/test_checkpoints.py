"""Listing checkpoints (store/engine/checkpoints.py): listings through them equal the model of
the repository, whoever wrote them and whatever was written after, and a damaged one is
an error, never a different listing."""

from __future__ import annotations

import random

import pytest
from pymongo import MongoClient, monitoring

from argonfs.errors import Corrupt, NotFound
from argonfs.store import Repository
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import reading as r
from argonfs.store.repo import documents as d


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints after a few records and small slot ranges, so that small data takes
    every path: checkpoints written often, deltas read by slot id and by the index."""
    monkeypatch.setattr(d, "CHECKPOINT_AFTER", 3)
    monkeypatch.setattr(r, "RANGE_MAX", 4)
    monkeypatch.setattr(cp, "CHUNK", 3)


def listing(repo: Repository, ref: str, collection: str) -> dict[str, str] | None:
    try:
        return {e.stem: e.hash for e in repo.entries(ref, collection)}
    except NotFound:
        return None


def heads(repo: Repository) -> int:
    return repo.db[cp.HEADS].count_documents({})


@pytest.mark.parametrize("seed", [1, 2])
def test_listings_match_a_model_through_checkpoints(repo: Repository, eager: None, seed: int) -> None:
    """Random puts, deletes, imports, drops, creates, forks and bundles; after each step
    every branch and bundle lists what the model says, and so do their pages."""
    rnd = random.Random(seed)
    model: dict[str, dict[str, dict[str, str]]] = {"main": {}}  # ref -> collection -> stem -> hash
    frozen: dict[str, dict[str, dict[str, str]]] = {}
    colls = ["a", "b"]
    for step in range(50):
        branch = rnd.choice(sorted(model))
        coll = rnd.choice(colls)
        state = model[branch]
        op = rnd.random()
        if op < 0.45:
            k = rnd.randrange(12)
            doc = repo.put(branch, coll, {"_id": k, "v": rnd.randrange(4)})
            state.setdefault(coll, {})[doc.stem] = doc.hash
        elif op < 0.6 and state.get(coll):
            stem = rnd.choice(sorted(state[coll]))
            repo.delete(branch, coll, stem)
            del state[coll][stem]
        elif op < 0.72:
            docs = [{"_id": rnd.randrange(30), "v": rnd.randrange(3)} for _ in range(rnd.randrange(1, 15))]
            repo.import_documents(branch, coll, iter(docs), batch_size=4)
            for doc in docs:
                got = repo.get(branch, coll, str(doc["_id"]))
                state.setdefault(coll, {})[got.stem] = got.hash
        elif op < 0.77 and coll in state:
            repo.drop_collection(branch, coll)
            del state[coll]
        elif op < 0.8 and coll not in state:
            repo.create_collection(branch, coll)
            state[coll] = {}
        elif op < 0.88 and len(model) < 4:
            name = f"b{step}"
            repo.create_branch(name, from_ref=branch)
            model[name] = {c: dict(s) for c, s in state.items()}
        else:
            bundle = repo.create_bundle(branch, f"step {step}")
            frozen[bundle.id] = {c: dict(s) for c, s in state.items()}
        for ref, colls_state in [*model.items(), *frozen.items()]:
            for c in colls:
                assert listing(repo, ref, c) == colls_state.get(c), (step, ref, c)
                assert repo.collection_exists(ref, c) == (c in colls_state)
    assert heads(repo) > 5, "the test must go through checkpoints"
    ref = rnd.choice(sorted(frozen))
    for c in colls:  # pages: every start point gives the rest of the same listing
        full = sorted(frozen[ref].get(c, {}))
        for i, stem in enumerate(full):
            assert [e.stem for e in repo.entries(ref, c, after=stem)] == full[i + 1 :]


def test_import_leaves_a_checkpoint_and_sees_a_writer_in_between(repo: Repository, mongo_uri: str, eager: None) -> None:
    """An import's checkpoint at its commit slot includes what another writer put while
    it ran, with the newer slot winning for a document both wrote."""
    other = Repository.open(mongo_uri, repo.db.name, author="other")
    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(10)))
    calls = []

    def progress(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            other.put("main", "c", {"_id": 1, "v": "other"})  # above the import's first batch: newer
            other.put("main", "c", {"_id": 6, "v": "other"})  # below its second batch: older
            other.put("main", "c", {"_id": 100, "v": "other"})

    repo.import_documents("main", "c", ({"_id": i, "v": 1} for i in range(8)), batch_size=4, progress=progress)
    head = repo.pin("main").seq
    assert repo.db[cp.HEADS].find_one({"b": repo.resolve("main").branch_id, "c": "c", "s": head}) is not None
    fresh = Repository.open(mongo_uri, repo.db.name, author="x")
    got = {doc.stem: doc.doc["v"] for doc in fresh.documents("main", "c")}
    assert got == {**{str(i): 1 for i in range(8)}, "1": "other", "8": 0, "9": 0, "100": "other"}


class _Returned(monitoring.CommandListener):
    """Counts the documents find and getMore commands bring back, per collection."""

    def __init__(self) -> None:
        self.docs: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "getMore"):
            self._names[event.request_id] = str(event.command.get("find") or event.command.get("collection"))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        name = self._names.pop(event.request_id, None)
        if name is not None:
            cursor = event.reply.get("cursor", {})
            self.docs[name] = self.docs.get(name, 0) + len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._names.pop(event.request_id, None)


def test_first_existence_check_reads_a_header_not_the_collection(repo: Repository, mongo_uri: str) -> None:
    """A fresh process asks whether a large imported collection exists: it reads the
    checkpoint's header, not the collection's records (O(1), not a key-range scan)."""
    repo.import_documents("main", "big", ({"_id": i} for i in range(3000)))
    listener = _Returned()
    with MongoClient(mongo_uri, event_listeners=[listener]) as client:
        fresh = Repository(client[repo.db.name], author="x")
        assert fresh.collection_exists("main", "big")
        assert fresh.collections("main") == ["big"]
    assert listener.docs.get("versions", 0) < 200, listener.docs  # head probes; a scan returns a batch of 1000
    assert listener.docs.get(cp.HEADS, 0) >= 1, listener.docs


def test_existence_is_not_checked_again_at_each_new_head(repo: Repository, mongo_uri: str) -> None:
    """A branch's layer seen to hold documents up to one head holds them at every later
    head: a process writing the branch (a mount under ``cp -r``) asks whether the
    collection exists without reading its records again, and a drop still counts."""
    for i in range(40):
        repo.put("main", "c", {"_id": i})
    listener = _Returned()
    with MongoClient(mongo_uri, event_listeners=[listener]) as client:
        writer = Repository(client[repo.db.name], author="x")
        assert writer.collection_exists("main", "c")
        first = listener.docs.get("versions", 0)
        assert first >= 40, listener.docs  # the layer's records, the first time
        for i in range(3):
            writer.put("main", "other", {"_id": i})
            before = listener.docs.get("versions", 0)
            assert writer.collection_exists("main", "c")
            assert listener.docs.get("versions", 0) - before < 10, listener.docs  # head probes and marker lookups only
        writer.drop_collection("main", "c")
        assert not writer.collection_exists("main", "c")
        writer.put("main", "c", {"_id": 1})
        assert writer.collection_exists("main", "c")
        assert [e.stem for e in writer.entries("main", "c")] == ["1"]


def test_a_damaged_chunk_is_corrupt_not_a_listing(repo: Repository, eager: None) -> None:
    repo.import_documents("main", "c", ({"_id": i} for i in range(10)))
    row = repo.db[cp.CHUNKS].find_one()
    assert row is not None
    repo.db[cp.CHUNKS].update_one({"_id": row["_id"]}, {"$set": {"e": b"not zlib"}})
    with pytest.raises(Corrupt):
        list(repo.entries("main", "c"))


def test_chunks_without_a_header_are_ignored(repo: Repository, eager: None) -> None:
    """A writer killed between its chunks and its header leaves chunks nobody reads."""
    repo.import_documents("main", "c", ({"_id": i} for i in range(10)))
    repo.db[cp.HEADS].delete_many({})
    repo.put("main", "c", {"_id": 99})
    assert sorted(e.stem for e in repo.entries("main", "c")) == sorted([*map(str, range(10)), "99"])


def test_a_transaction_open_across_a_checkpoint_is_seen_once_it_commits(repo: Repository, eager: None) -> None:
    """A checkpoint taken while a transaction has records below it but no commit cannot
    show them; once the commit lands, a view that includes it must not use that
    checkpoint (the records are below the slots it reads above it)."""
    from argonfs.store.engine import commits
    from argonfs.store.engine import versions as v

    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(10)))
    bid = repo.resolve("main").branch_id
    txn = "T" * 14
    records = [repo._record(v.PUT, "c", str(i), {"_id": i, "v": "txn"}) for i in (1, 2, 50)]
    for rec in records:
        rec["x"], rec["xk"] = txn, "merge"
    commits.append(repo._versions, bid, records)
    for i in range(10, 16):  # more writes above, so that a listing leaves a checkpoint
        repo.put("main", "c", {"_id": i, "v": 0})
    before = {e.stem for e in repo.entries("main", "c")}
    assert "50" not in before
    top = repo.db[cp.HEADS].find_one({"b": bid, "c": "c"}, sort=[("s", -1)])
    assert top is not None and top["p"] == [txn] and top["s"] == repo.pin("main").seq
    commits.append_commit(repo._versions, bid, txn, {"kind": "merge", "a": "t", "t": top["t"]}, None)
    after = {doc.stem: doc.doc["v"] for doc in repo.documents("main", "c")}
    assert after["1"] == after["2"] == after["50"] == "txn"
    assert {e.stem for e in repo.entries("main", "c")} == before | {"50"}


def test_a_listing_leaves_a_checkpoint_only_when_it_read_enough_records(repo: Repository, eager: None) -> None:
    """A branch forked after its parent's checkpoint and changed a little lists from
    that checkpoint and its own few records, and leaves no checkpoint of its own, even
    with more slots than the threshold (one in another collection); once it has as many
    records as the threshold, a listing leaves one at its head.  A branch with no
    checkpoint below it leaves one as soon as its listing read that many records."""
    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(10)))
    repo.create_branch("f")
    fid = repo.resolve("f").branch_id
    repo.put("f", "c", {"_id": 1, "v": 1})
    repo.put("f", "c", {"_id": 50, "v": 1})
    repo.put("f", "other", {"_id": 0})  # a third slot, not one of the collection's records
    want = {**{str(i): 0 for i in range(10)}, "1": 1, "50": 1}
    assert {d.stem: d.doc["v"] for d in repo.documents("f", "c")} == want
    assert {e.stem for e in repo.entries("f", "c")} == set(want)
    assert repo.db[cp.HEADS].count_documents({"b": fid, "c": "c"}) == 0
    repo.put("f", "c", {"_id": 2, "v": 1})
    assert {e.stem for e in repo.entries("f", "c")} == set(want)
    assert repo.db[cp.HEADS].find_one({"b": fid, "c": "c", "s": repo.pin("f").seq}) is not None
    for i in range(5):
        repo.put("main", "fresh", {"_id": i})
    assert [e.stem for e in repo.entries("main", "fresh")] == [str(i) for i in range(5)]
    mid = repo.resolve("main").branch_id
    assert repo.db[cp.HEADS].find_one({"b": mid, "c": "fresh", "s": repo.pin("main").seq}) is not None
