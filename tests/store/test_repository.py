"""Branches, versions, snapshots, bundles and labels against a real MongoDB server."""

from __future__ import annotations

import pytest

from argonfs import codec
from argonfs.errors import AlreadyExists, Conflict, InvalidDocument, InvalidName, NotFound, ReadOnly
from argonfs.store.engine import commits
from argonfs.store.engine import versions as v


def stems(repo, ref, collection="people"):
    return [e.stem for e in repo.entries(ref, collection)]


def test_init_is_idempotent_and_creates_main(repo) -> None:
    assert repo.init() is False
    assert [b.name for b in repo.list_branches()] == ["main"]
    assert repo.head("main") == 0


def test_branch_creation_copies_nothing(repo) -> None:
    repo.import_documents("main", "people", ({"_id": i, "n": i} for i in range(50)))
    before = repo.db["versions"].count_documents({})
    b = repo.create_branch("exp")
    assert repo.db["versions"].count_documents({}) == before
    assert (b.parent_name, b.fork_seq) == ("main", repo.head("main"))
    assert len(stems(repo, "exp")) == 50


def test_branch_writes_do_not_touch_the_parent(repo) -> None:
    repo.put("main", "people", {"_id": "ada", "name": "Ada"})
    repo.put("main", "people", {"_id": "alan", "name": "Alan"})
    repo.create_branch("exp")
    repo.put("exp", "people", {"_id": "ada", "name": "Ada Lovelace"})
    repo.delete("exp", "people", "alan")
    repo.put("exp", "people", {"_id": "grace", "name": "Grace"})
    assert stems(repo, "main") == ["ada", "alan"]
    assert stems(repo, "exp") == ["ada", "grace"]
    assert repo.get("main", "people", "ada").doc["name"] == "Ada"
    assert repo.get("exp", "people", "ada").doc["name"] == "Ada Lovelace"
    with pytest.raises(NotFound):
        repo.get("exp", "people", "alan")
    # a later write to main is not seen by the branch (it forked earlier)
    repo.put("main", "people", {"_id": "linus"})
    assert "linus" not in stems(repo, "exp")


def test_branch_of_a_branch_and_from_a_past_point(repo) -> None:
    for i in range(3):
        repo.put("main", "people", {"_id": f"p{i}"})
    repo.create_branch("old", "main@1")
    assert stems(repo, "old") == ["p0"]
    repo.create_branch("a")
    repo.put("a", "people", {"_id": "p0", "x": 1})
    repo.create_branch("b", "a")
    repo.delete("b", "people", "p1")
    repo.put("b", "people", {"_id": "p9"})
    assert stems(repo, "b") == ["p0", "p2", "p9"]
    assert repo.get("b", "people", "p0").doc == {"_id": "p0", "x": 1}


def test_sequence_is_dense_and_snapshots_do_not_change(repo) -> None:
    seqs = [repo.put("main", "c", {"_id": i}).seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert stems(repo, "main@3", "c") == ["0", "1", "2"]
    repo.delete("main", "c", "0")
    assert stems(repo, "main@3", "c") == ["0", "1", "2"]
    assert sorted(r["s"] for r in repo.db["versions"].find({"b": repo.branch("main").id})) == list(range(1, 7))
    with pytest.raises(NotFound, match="no version 99"):
        repo.resolve("main@99")


def test_version_records_carry_size_hash_author_and_time(repo) -> None:
    d = repo.put("main", "people", {"_id": "ada", "langs": ["en", "fr"], "n": 1.5})
    rendered = codec.render(d.doc)
    [entry] = list(repo.entries("main", "people"))
    assert entry.size == len(rendered) == d.size
    assert entry.hash == codec.content_hash(rendered)
    assert entry.author == "tester"
    rec = repo.db["versions"].find_one({"k": "ada"})
    assert rec["op"] == "put" and rec["a"] == "tester" and rec["t"] is not None


def test_collections_create_drop_and_recreate(repo) -> None:
    repo.put("main", "people", {"_id": 1})
    repo.create_collection("main", "empty")
    assert repo.collections("main") == ["empty", "people"]
    assert stems(repo, "main", "empty") == []
    with pytest.raises(AlreadyExists):
        repo.create_collection("main", "empty")
    repo.create_branch("exp")
    before = repo.db["versions"].count_documents({})
    repo.drop_collection("exp", "people")
    assert repo.db["versions"].count_documents({}) == before + 1  # O(1): one marker
    assert repo.collections("exp") == ["empty"]
    assert repo.collections("main") == ["empty", "people"]
    with pytest.raises(NotFound):
        list(repo.entries("exp", "people"))
    with pytest.raises(NotFound):
        repo.get("exp", "people", "1")
    repo.put("exp", "people", {"_id": 2})  # writing re-creates it, without the old documents
    assert stems(repo, "exp") == ["2"]
    repo.drop_collection("exp", "people")
    repo.create_collection("exp", "people")
    assert stems(repo, "exp") == []
    # deleting every document leaves the collection in place (as in MongoDB)
    repo.delete("main", "people", "1")
    assert "people" in repo.collections("main")


def test_drop_in_parent_before_fork_hides_grandparent_documents(repo) -> None:
    repo.put("main", "c", {"_id": "old"})
    repo.create_branch("a")
    repo.drop_collection("a", "c")
    repo.put("a", "c", {"_id": "new"})
    repo.create_branch("b", "a")
    repo.put("b", "c", {"_id": "newer"})
    assert stems(repo, "b", "c") == ["new", "newer"]


def test_listing_streams_in_pages_and_merges_layers(repo, monkeypatch) -> None:
    monkeypatch.setattr(v, "PAGE", 7)
    model: dict[str, int] = {}
    repo.import_documents("main", "c", ({"_id": f"k{i:03}", "v": 0} for i in range(40)))
    model.update({f"k{i:03}": 0 for i in range(40)})
    repo.create_branch("a")
    for i in range(0, 40, 3):
        repo.put("a", "c", {"_id": f"k{i:03}", "v": 1})
        model[f"k{i:03}"] = 1
    for i in range(0, 40, 5):
        repo.put("a", "c", {"_id": f"k{i:03}", "v": 2})  # several versions of one key
        model[f"k{i:03}"] = 2
    repo.create_branch("b", "a")
    for i in range(1, 40, 4):
        repo.delete("b", "c", f"k{i:03}")
        del model[f"k{i:03}"]
    repo.put("b", "c", {"_id": "k999", "v": 3})
    model["k999"] = 3
    assert stems(repo, "b", "c") == sorted(model)
    assert {d.stem: d.doc["v"] for d in repo.documents("b", "c")} == model
    after = sorted(model)[10]
    assert [e.stem for e in repo.entries("b", "c", after=after)] == sorted(model)[11:]


def test_bundles_are_immutable_snapshots(repo) -> None:
    repo.put("main", "people", {"_id": "ada", "v": 1})
    b = repo.create_bundle("main", "first", label="production")
    repo.put("main", "people", {"_id": "ada", "v": 2})
    repo.put("main", "people", {"_id": "bob"})
    assert repo.get(b.id, "people", "ada").doc["v"] == 1
    assert stems(repo, "production") == ["ada"]
    assert repo.resolve(b.id).kind == "bundle" and repo.resolve("production").bundle == b.id
    with pytest.raises(ReadOnly):
        repo.put(b.id, "people", {"_id": "x"})
    with pytest.raises(ReadOnly):
        repo.delete("production", "people", "ada")
    with pytest.raises(ReadOnly):
        repo.drop_collection("main@1", "people")
    assert repo.bundle(b.id).message == "first"
    assert [x.id for x in repo.list_bundles()] == [b.id]


def test_bundle_ids_sort_by_time(repo) -> None:
    ids = [repo.create_bundle("main", str(i)).id for i in range(3)]
    assert ids == sorted(ids) and all(len(i) == 14 for i in ids)
    assert [b.id for b in repo.list_bundles(2)] == ids[:0:-1]
    assert [b.id for b in repo.list_bundles(2, before=ids[1])] == ids[:1]


def test_labels_move_and_keep_history(repo) -> None:
    one = repo.create_bundle("main", "one")
    repo.put("main", "c", {"_id": 1})
    two = repo.create_bundle("main", "two")
    repo.set_label("prod", one.id)
    repo.set_label("prod", two.id)
    assert repo.resolve("prod").bundle == two.id
    repo.delete_label("prod")
    with pytest.raises(NotFound):
        repo.resolve("prod")
    history = repo.label_history("prod")
    assert [(h["op"], h["bundle"]) for h in history] == [("delete", None), ("set", two.id), ("set", one.id)]
    with pytest.raises(NotFound):
        repo.set_label("x", "nosuchbundle")
    with pytest.raises(InvalidName):
        repo.set_label("a/b", one.id)


def test_branch_delete_rules(repo) -> None:
    repo.put("main", "c", {"_id": 1})
    repo.create_branch("a")
    repo.put("a", "c", {"_id": 2})
    bundle = repo.create_bundle("a", "keep")
    repo.create_branch("b", "a")
    with pytest.raises(Conflict, match="default branch"):
        repo.delete_branch("main")
    with pytest.raises(Conflict, match="b"):
        repo.delete_branch("a")
    repo.delete_branch("a", force=True)
    assert [b.name for b in repo.list_branches()] == ["b", "main"]
    assert stems(repo, "b", "c") == ["1", "2"]  # the child still reads its parent's versions
    assert stems(repo, bundle.id, "c") == ["1", "2"]  # and so does the bundle
    repo.create_branch("a")  # the name is free again, with a fresh history
    assert stems(repo, "a", "c") == ["1"]
    with pytest.raises(NotFound):
        repo.delete_branch("nope")


@pytest.mark.parametrize("name", ["", "a/b", "a@b", ".hidden", "x" * 101, "tab\there"])
def test_invalid_branch_names(repo, name: str) -> None:
    with pytest.raises(InvalidName):
        repo.create_branch(name)


def test_unknown_refs(repo) -> None:
    with pytest.raises(NotFound, match="unknown ref 'nope'"):
        repo.resolve("nope")
    with pytest.raises(NotFound, match="unknown branch"):
        repo.resolve("nope@1")
    with pytest.raises(InvalidName):
        repo.resolve("main@x")
    with pytest.raises(NotFound):
        repo.create_branch("x", "nope")


def test_bad_documents_change_nothing(repo) -> None:
    repo.put("main", "people", {"_id": "ada", "v": 1})
    head = repo.head("main")
    with pytest.raises(InvalidDocument, match="does not match"):
        repo.put("main", "people", {"_id": "bob"}, stem="ada")
    with pytest.raises(InvalidDocument, match="limit"):
        repo.put("main", "people", {"_id": "ada", "blob": "x" * codec.MAX_BSON_SIZE})
    with pytest.raises(InvalidDocument):
        repo.put("main", "people", ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(InvalidName):
        repo.put("main", "$bad", {"_id": 1})
    assert repo.head("main") == head
    assert repo.get("main", "people", "ada").doc == {"_id": "ada", "v": 1}


def test_stem_supplies_a_missing_id(repo) -> None:
    d = repo.put("main", "c", {"x": 1}, stem="42")
    assert d.doc == {"_id": 42, "x": 1}
    assert repo.get_id("main", "c", 42).doc["x"] == 1


def test_import_is_batched_and_safe_to_rerun(repo) -> None:
    docs = [{"_id": i, "v": i} for i in range(120)]
    first = repo.import_documents("main", "c", iter(docs), batch_size=50)
    assert (first.added, first.updated, first.unchanged) == (120, 0, 0)
    docs[5]["v"] = -1
    again = repo.import_documents("main", "c", iter([*docs, {"_id": 500}]), batch_size=50)
    assert (again.added, again.updated, again.unchanged) == (1, 1, 119)
    # 120 in 3 batches (a range record each) + a commit record, then 2 in 2 batches + a commit record
    assert repo.head("main") == 129
    assert repo.get("main", "c", "5").doc["v"] == -1


def test_head_is_found_by_probing_dense_slots(repo) -> None:
    repo.import_documents("main", "c", ({"_id": i} for i in range(333)), batch_size=100)
    bid = repo.branch("main").id
    # a range record at 1, 102, 203 and 304 reserves the slots of each batch after it;
    # the import's commit record is at 338.  Any top is a valid start: a range's end,
    # the head, or a slot below the first range.
    for known in (0, 101, 202, 303, 337, 338):
        assert v.head(repo.db["versions"], bid, known) == 338
    assert v.head(repo.db["versions"], repo.create_branch("empty").id) == 0


def test_over_long_ids_use_hashed_names(repo) -> None:
    long_id = "x" * 500
    d = repo.put("main", "c", {"_id": long_id, "v": 1})
    assert codec.is_hashed_stem(d.stem)
    assert repo.get("main", "c", d.stem).doc["_id"] == long_id
    repo.put("main", "c", {"_id": long_id, "v": 2}, stem=d.stem)
    assert [e.stem for e in repo.entries("main", "c")] == [d.stem]
    with pytest.raises(InvalidDocument, match="must carry its _id"):
        repo.put("main", "c", {"v": 3}, stem=d.stem)


def test_batch_that_collides_part_way_keeps_its_prefix(repo) -> None:
    bid = repo.branch("main").id
    versions = repo.db["versions"]
    other = {"_id": v.slot_id(bid, 5), "b": bid, "s": 5, "c": "c", "k": "other", "op": "del", "a": "x", "t": None}
    for s in range(1, 5):  # slots 1-4 were already there when "another writer" took slot 5
        versions.insert_one({**other, "_id": v.slot_id(bid, s), "s": s, "k": f"early{s}"})
    versions.insert_one(other)
    # a writer that last saw head 0 places its batch at 1.. and collides at once; one
    # that saw head 2 places nothing either; neither leaves a gap
    records = [{"c": "c", "k": f"mine{i}", "op": "del", "a": "me", "t": None} for i in range(6)]
    assert commits.append(versions, bid, records, guess=2) == 11
    assert sorted(r["s"] for r in versions.find({"b": bid})) == list(range(1, 12))
    assert [r["k"] for r in versions.find({"b": bid, "s": {"$gt": 5}}).sort("s", 1)] == [f"mine{i}" for i in range(6)]


def test_batch_interrupted_by_a_concurrent_slot_places_the_rest_above_it(repo, monkeypatch) -> None:
    """Simulate another writer taking slot 3 while our ordered batch is at slots 1-2."""
    bid = repo.branch("main").id
    versions = repo.db["versions"]
    real = versions.insert_many
    calls = []

    def racing_insert_many(docs, ordered=True):
        if not calls:
            versions.insert_one({"_id": v.slot_id(bid, 3), "b": bid, "s": 3, "c": "c", "k": "theirs", "op": "del", "a": "x", "t": None})
        calls.append([d["s"] for d in docs])
        return real(docs, ordered=ordered)

    monkeypatch.setattr(versions, "insert_many", racing_insert_many)
    records = [{"c": "c", "k": f"mine{i}", "op": "del", "a": "me", "t": None} for i in range(5)]
    assert commits.append(versions, bid, records, guess=0) == 6
    assert calls == [[1, 2, 3, 4, 5], [4, 5, 6]]
    assert [r["k"] for r in versions.find({"b": bid}).sort("s", 1)] == ["mine0", "mine1", "theirs", "mine2", "mine3", "mine4"]


def test_foreign_unique_index_fails_fast(repo) -> None:
    repo.db["versions"].create_index([("c", 1), ("k", 1)], unique=True, name="foreign")
    repo.put("main", "c", {"_id": 1})
    head = repo.head("main")
    with pytest.raises(Conflict, match="unexpected unique index"):
        repo.put("main", "c", {"_id": 1, "again": True})
    assert repo.head("main") == head
    repo.import_documents("main", "d", iter([{"_id": 7}]))  # its range record takes ("", "~range")
    with pytest.raises(Conflict, match="unexpected unique index"):
        repo.import_documents("main", "c", iter([{"_id": 7}, {"_id": 1, "changed": True}]))


def test_import_is_atomic(repo) -> None:
    """Readers see a whole import or none of it; an import that fails part-way leaves
    nothing visible (its versions stay tagged with an uncommitted transaction)."""
    import threading

    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(sum(1 for _ in repo.entries("main", "c")))
            except NotFound:
                seen.add(0)

    t = threading.Thread(target=reader)
    t.start()
    try:
        repo.import_documents("main", "c", ({"_id": i} for i in range(1000)), batch_size=100)
    finally:
        stop.set()
        t.join()
    assert seen <= {0, 1000}, sorted(seen)

    def failing():
        for i in range(250):
            yield {"_id": f"new{i}"}
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        repo.import_documents("main", "c", failing(), batch_size=100)
    assert sum(1 for _ in repo.entries("main", "c")) == 1000
    assert repo.head("main") > 1001  # the failed import's versions exist, invisible


def test_rename_is_one_atomic_move(repo) -> None:
    repo.put("main", "c", {"_id": 1, "v": "x"})
    doc, slot = repo.rename("main", "c", "1", "d", "two")
    assert doc.doc == {"_id": "two", "v": "x"} and repo.get("main", "d", "two").doc == doc.doc
    with pytest.raises(NotFound):
        repo.get("main", "c", "1")
    inside = f"main@{slot - 1}"  # pinned after the put and the delete, before the commit
    assert repo.get(inside, "c", "1").doc["v"] == "x"
    with pytest.raises(NotFound):
        repo.get(inside, "d", "two")
    assert next(repo.log("main")).op == "rename"
    with pytest.raises(InvalidDocument):
        repo.rename("main", "d", "two", "d", "~h" + "0" * 64)


def test_unchanged_put_in_a_fork_names_the_parents_version(repo) -> None:
    """put(if_changed=True) of a document a fork inherited unchanged writes nothing and
    names the version it found, with that version's own branch, and the mount's branch
    interface reports the fork's real head, not the parent's slot."""
    from argonfs.store.snapshots import MongoCatalog

    for i in range(4):
        repo.put("main", "c", {"_id": i, "v": i})
    repo.create_branch("fork")
    parent, child = repo.resolve("main").branch_id, repo.resolve("fork").branch_id
    same = repo.put("fork", "c", {"_id": 3, "v": 3}, if_changed=True)
    assert (same.stored, same.branch_id, same.seq) == (False, parent, 4)
    branch = MongoCatalog(repo).resolve("fork")
    stored, head = branch.put("c", {"_id": 3, "v": 3}, stem="3", author=None, mtime=None)
    assert stored.version == (parent, 4) and head == 0
    new = repo.put("fork", "c", {"_id": 3, "v": "new"}, if_changed=True)
    assert (new.stored, new.branch_id, new.seq) == (True, child, 1)
