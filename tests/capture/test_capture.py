"""Capture of a live database into a branch, in this process (``--once`` runs): the
first copy, every kind of event, collection events, resync, and the capture record."""

from __future__ import annotations

import pytest

from argonfs.capture import Stopped, records
from argonfs.errors import Conflict, Protected
from tests.capture.conftest import Source, branch_state, capture_once


def test_first_copy_and_events_make_the_branch_equal_the_source(repo, source: Source) -> None:
    source.db.users.insert_many([{"_id": i, "n": i, "tags": ["a"]} for i in range(40)])
    source.db.create_collection("orders")
    source.db.command("collMod", "orders", changeStreamPreAndPostImages={"enabled": True})
    source.db.orders.insert_many([{"_id": f"o{i}", "items": [1, 2, 3], "meta": {"v": 1}} for i in range(10)])
    reports = capture_once(repo, source.uri, "live")
    assert reports[-1]["event"] == "copy"
    assert branch_state(repo, "live") == source.state()
    assert repo.branch("live").protected

    source.db.users.update_one({"_id": 1}, {"$set": {"n": 100, "deep.k": 1}, "$unset": {"tags": ""}})  # no pre-images: looked up
    source.db.orders.update_one({"_id": "o1"}, {"$set": {"items.1": 9, "meta.v": 2}})  # pre-image + update
    source.db.orders.update_one({"_id": "o2"}, {"$pop": {"items": 1}})
    source.db.users.replace_one({"_id": 2}, {"replaced": True})
    source.db.users.delete_one({"_id": 3})
    source.db.users.insert_one({"_id": "new", "n": -1})
    reports = capture_once(repo, source.uri, "live")
    assert [r["event"] for r in reports] == ["batch"]
    assert reports[0]["events"] == 6
    assert branch_state(repo, "live") == source.state()
    assert repo.get_id("live", "orders", "o1").doc == {"_id": "o1", "items": [1, 9, 3], "meta": {"v": 2}}

    # every event is a version of its own: the history of o1 shows the copy and the update
    assert len(list(repo.log("live", collection="orders", stem="o1"))) == 2


def test_every_logged_version_of_a_capture_batch_reads_back(repo, source: Source) -> None:
    """A counter incremented many times is one batch with a version per increment: the
    log lists each with the seq that shows it and the slot that reads it back."""
    source.db.create_collection("k")
    source.db.command("collMod", "k", changeStreamPreAndPostImages={"enabled": True})
    source.db.k.insert_one({"_id": "n", "v": 0})
    capture_once(repo, source.uri, "live")
    for _ in range(60):
        source.db.k.update_one({"_id": "n"}, {"$inc": {"v": 1}})
    reports = capture_once(repo, source.uri, "live")
    assert [r["event"] for r in reports] == ["batch"]
    log = list(repo.log("live", "k", "n"))
    assert len(log) == 61
    assert [repo.get_version(f"{e.branch}@{e.seq}", "k", "n", e.slot).doc["v"] for e in log] == list(range(60, -1, -1))
    assert repo.get(f"live@{log[0].seq}", "k", "n").doc["v"] == 60


def test_an_update_uses_the_pre_image_not_a_later_state(repo, source: Source) -> None:
    """With pre-images, each update's version is the document right after that update,
    even when later writes changed it again before the capture read the event."""
    source.db.create_collection("c")
    source.db.command("collMod", "c", changeStreamPreAndPostImages={"enabled": True})
    source.db.c.insert_one({"_id": 1, "n": 0})
    capture_once(repo, source.uri, "live")
    for n in range(1, 4):
        source.db.c.update_one({"_id": 1}, {"$set": {"n": n}})
    reports = capture_once(repo, source.uri, "live", batch_size=1)  # a commit per event
    assert [repo.get(f"live@{r['slot']}", "c", "1").doc["n"] for r in reports] == [1, 2, 3]


def test_a_source_transaction_is_never_split(repo, source: Source) -> None:
    source.db.c.insert_one({"_id": "seed"})
    capture_once(repo, source.uri, "live")
    with source.client.start_session() as s, s.start_transaction():
        for i in range(7):
            source.db.c.insert_one({"_id": i}, session=s)
            source.db.d.insert_one({"_id": i}, session=s)
    source.db.c.insert_one({"_id": "after"})
    reports = capture_once(repo, source.uri, "live", batch_size=3)
    assert [r["events"] for r in reports][:1] == [14]  # 14 events of one transaction: one batch
    # no visible state of the branch holds part of the transaction
    commits = [r["slot"] for r in reports]
    for slot in commits:
        ids = {d.doc["_id"] for d in repo.documents(f"live@{slot}", "c")}
        assert len(ids & set(range(7))) in (0, 7)
    assert branch_state(repo, "live") == source.state()


def test_drop_and_rename_of_collections(repo, source: Source) -> None:
    source.db.a.insert_many([{"_id": i} for i in range(5)])
    source.db.b.insert_many([{"_id": i, "b": 1} for i in range(3)])
    source.db.gone.insert_one({"_id": 1})
    capture_once(repo, source.uri, "live")
    source.db.gone.drop()
    source.db.a.rename("renamed")
    source.db.renamed.insert_one({"_id": 99})
    capture_once(repo, source.uri, "live")
    assert sorted(repo.collections("live")) == ["b", "renamed"]
    assert branch_state(repo, "live") == source.state()


def test_drop_database_drops_everything_and_stops(repo, source: Source) -> None:
    source.db.a.insert_many([{"_id": i} for i in range(5)])
    capture_once(repo, source.uri, "live")
    source.client.drop_database(source.name)
    with pytest.raises(Stopped, match="was dropped") as stopped:
        capture_once(repo, source.uri, "live")
    assert stopped.value.state == "dropped"
    assert repo.collections("live") == []
    [rec] = records(repo.db)
    assert rec["state"] == "dropped"
    with pytest.raises(Stopped, match="was dropped"):  # it stays stopped until --resync
        capture_once(repo, source.uri, "live")


def test_invalidate_keeps_the_token_and_resync_continues(repo, source: Source) -> None:
    one = f"{source.uri}.orders"
    source.db.orders.insert_many([{"_id": i} for i in range(5)])
    capture_once(repo, one, "live")
    source.db.orders.insert_one({"_id": 5})
    source.db.orders.drop()
    with pytest.raises(Stopped, match="--resync") as stopped:
        capture_once(repo, one, "live")
    assert stopped.value.state == "invalidated"
    assert repo.collections("live") == []  # the drop before the invalidate was applied
    source.db.orders.insert_many([{"_id": i, "again": True} for i in range(3)])
    with pytest.raises(Stopped, match="--resync"):
        capture_once(repo, one, "live")
    capture_once(repo, one, "live", resync=True)
    assert branch_state(repo, "live") == source.state(["orders"])


def test_only_the_named_collections_are_captured(repo, source: Source) -> None:
    for name in ("a", "b", "c"):
        source.db[name].insert_one({"_id": name})
    capture_once(repo, source.uri, "live", only=("a", "c"))
    source.db.b.insert_one({"_id": "b2"})
    source.db.c.insert_one({"_id": "c2"})
    capture_once(repo, source.uri, "live", only=("a", "c"))
    assert branch_state(repo, "live") == source.state(["a", "c"])


def test_the_branch_is_written_only_by_its_capture(repo, source: Source) -> None:
    source.db.a.insert_one({"_id": 1})
    capture_once(repo, source.uri, "live")
    with pytest.raises(Protected):
        repo.put("live", "a", {"_id": 2})
    with pytest.raises(Conflict, match="captures"):
        capture_once(repo, source.uri + "x", "live")  # another source into the same branch


def test_resync_writes_only_what_differs_as_one_commit(repo, source: Source) -> None:
    source.db.a.insert_many([{"_id": i, "v": 0} for i in range(20)])
    capture_once(repo, source.uri, "live")
    head = repo.head("live")
    # changes the capture did not see (as after a history loss): resync must find them
    source.db.a.update_many({"_id": {"$lt": 5}}, {"$set": {"v": 1}})
    source.db.a.delete_many({"_id": {"$gte": 15}})
    reports = capture_once(repo, source.uri, "live", resync=True)
    assert reports[0]["event"] == "copy"
    assert branch_state(repo, "live") == source.state()
    written = [e for e in repo.log("live", collection="a") if e.seq > head]
    assert len(written) == 10  # 5 updates and 5 deletes, nothing unchanged rewritten
    assert len({e.txn for e in written}) == 1  # in one transaction: one atomic commit


def test_merges_and_reverts_into_a_captured_branch_are_refused(repo, source: Source) -> None:
    source.db.a.insert_one({"_id": 1})
    capture_once(repo, source.uri, "live")
    repo.create_branch("fork", "live")
    repo.put("fork", "a", {"_id": 2})
    with pytest.raises(Protected, match="written only by its capture"):
        repo.merge("fork", "live")
    with pytest.raises(Protected, match="written only by its capture"):
        repo.revert("live", to="1")
    with pytest.raises(Protected, match="fork it"):
        repo.put("live", "a", {"_id": 3})


def test_a_branch_deleted_and_made_again_is_captured_afresh(repo, source: Source) -> None:
    source.db.a.insert_many([{"_id": i} for i in range(5)])
    capture_once(repo, source.uri, "live")
    repo.unprotect_branch("live")
    repo.delete_branch("live")
    repo.create_branch("live", empty=True)
    reports = capture_once(repo, source.uri, "live")
    assert reports[0]["event"] == "copy"
    assert branch_state(repo, "live") == source.state()


def test_a_branch_holding_other_documents_is_not_overwritten(repo, source: Source) -> None:
    source.db.a.insert_one({"_id": 1})
    repo.put("main", "mine", {"_id": "keep"})
    with pytest.raises(Conflict, match="already holds documents"):
        capture_once(repo, source.uri, "main")
    assert repo.get("main", "mine", "keep").doc == {"_id": "keep"}
