"""Random writes to the source, captured now and then: the branch head always equals a
fresh import of the source (by ``Repository.diff``), and every bundle taken during the
run equals the source at the moment it was taken."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from tests.capture.conftest import Source, branch_state, capture_once

COLLECTIONS = ("a", "b")
ids = s.integers(0, 7)
values = s.one_of(s.integers(-5, 5), s.text(max_size=3), s.lists(s.integers(0, 3), max_size=3))
write = s.one_of(
    s.tuples(s.just("insert"), s.sampled_from(COLLECTIONS), ids, values),
    s.tuples(s.just("set"), s.sampled_from(COLLECTIONS), ids, values),
    s.tuples(s.just("unset"), s.sampled_from(COLLECTIONS), ids, s.just(None)),
    s.tuples(s.just("push"), s.sampled_from(COLLECTIONS), ids, s.integers(0, 9)),
    s.tuples(s.just("replace"), s.sampled_from(COLLECTIONS), ids, values),
    s.tuples(s.just("delete"), s.sampled_from(COLLECTIONS), ids, s.just(None)),
)
step = s.one_of(write, s.tuples(s.just("txn"), s.lists(write, min_size=1, max_size=4)), s.just(("capture",)))


def _apply(db: Any, op: tuple[Any, ...], session: Any = None) -> None:
    kind, coll, i, value = op
    c = db[coll]
    if kind == "insert":
        if c.find_one({"_id": i}, session=session) is None:
            c.insert_one({"_id": i, "v": value, "arr": []}, session=session)
    elif kind == "set":
        c.update_one({"_id": i}, {"$set": {"v": value, "deep.x": value}}, session=session)
    elif kind == "unset":
        c.update_one({"_id": i}, {"$unset": {"v": ""}}, session=session)
    elif kind == "push":
        c.update_one({"_id": i}, {"$push": {"arr": value}}, session=session)
    elif kind == "replace":
        c.replace_one({"_id": i}, {"r": value}, session=session)
    else:
        c.delete_one({"_id": i}, session=session)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=s.lists(step, min_size=1, max_size=25), pre_images=s.booleans(), bulk_min=s.sampled_from([0, 2]))
def test_captured_branch_follows_the_source(repo, source_server: Any, steps: list[tuple[Any, ...]], pre_images: bool, bulk_min: int) -> None:
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(source_server.uri)
    src = Source(client, f"app_{uuid.uuid4().hex[:10]}", source_server.uri.rstrip("/"))
    branch = f"live-{uuid.uuid4().hex[:6]}"
    try:
        for name in COLLECTIONS:
            src.db.create_collection(name)
            if pre_images:
                src.db.command("collMod", name, changeStreamPreAndPostImages={"enabled": True})
        src.db.a.insert_one({"_id": 0, "v": "seed", "arr": []})
        capture_once(repo, src.uri, branch)
        taken: list[tuple[str, dict[str, Any]]] = []
        for op in [*steps, ("capture",)]:
            if op[0] == "capture":
                capture_once(repo, src.uri, branch, batch_size=3, bulk_min=bulk_min)  # 2: runs of puts in bulk
                bundle = repo.create_bundle(branch, message="during the run")
                taken.append((bundle.id, src.state(list(COLLECTIONS))))
            elif op[0] == "txn":
                with client.start_session() as session, session.start_transaction():
                    for w in op[1]:
                        _apply(src.db, w, session)
            else:
                _apply(src.db, op)

        fresh = f"fresh-{uuid.uuid4().hex[:6]}"
        repo.create_branch(fresh, empty=True)
        for name in sorted(src.db.list_collection_names()):  # as `argonfs import mongodb://...` reads them
            repo.import_documents(fresh, name, src.db[name].find().sort("_id", 1))
        assert repo.diff(branch, fresh) == []
        for bundle_id, expected in taken:
            got = branch_state(repo, bundle_id)
            assert {c: docs for c, docs in got.items() if docs} == {c: docs for c, docs in expected.items() if docs}
    finally:
        client.drop_database(src.name)
        client.close()
