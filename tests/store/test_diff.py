"""diff: field-level differences, and document differences between refs, checked
against a model of plain dicts."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argonfs.store.engine.diff import ADDED, MODIFIED, REMOVED, FieldChange, field_diff


def test_field_diff_paths():
    old = {"_id": 1, "a": 1, "b": {"c": [1, 2, {"d": "x"}], "e": True}, "gone": 0, "t": 1}
    new = {"_id": 1, "a": 2, "b": {"c": [1, 2, {"d": "y"}], "e": True}, "t": 1.0, "fresh": [1]}
    assert field_diff(old, new) == [
        FieldChange("a", 1, 2),
        FieldChange("b.c[2].d", "x", "y"),
        FieldChange("gone", 0, None, REMOVED),
        FieldChange("t", 1, 1.0),  # int -> double is a change, though 1 == 1.0
        FieldChange("fresh", None, [1], ADDED),
    ]
    assert field_diff({"l": [1, 2]}, {"l": [1, 2, 3]}) == [FieldChange("l", [1, 2], [1, 2, 3])]
    assert field_diff({"x": 1}, {"x": 1}) == []


def _summary(changes):
    return {(c.collection, c.stem): c.change for c in changes}


def test_diff_between_branches(repo):
    repo.import_documents("main", "c", ({"_id": i, "v": i} for i in range(50)))
    repo.create_branch("a")
    repo.create_branch("b")
    repo.put("a", "c", {"_id": 1, "v": "changed"})
    repo.delete("a", "c", "2")
    repo.put("a", "c", {"_id": 100})
    repo.put("a", "other", {"_id": "x"})
    repo.put("b", "c", {"_id": 3, "v": -3})
    repo.put("a", "c", {"_id": 4, "v": 4})  # rewritten with the same content: no change
    assert _summary(repo.diff("main", "a")) == {("c", "1"): MODIFIED, ("c", "2"): REMOVED, ("c", "100"): ADDED, ("other", "x"): ADDED}
    assert _summary(repo.diff("a", "main")) == {("c", "1"): MODIFIED, ("c", "2"): ADDED, ("c", "100"): REMOVED, ("other", "x"): REMOVED}
    changes = repo.diff("a", "b", "c")
    assert _summary(changes) == {("c", "1"): MODIFIED, ("c", "2"): ADDED, ("c", "3"): MODIFIED, ("c", "100"): REMOVED}
    one = next(ch for ch in changes if ch.stem == "1")
    assert one.fields == [FieldChange("v", "changed", 1)]
    # main moving on after the forks shows up too
    repo.put("main", "c", {"_id": 7, "v": 70})
    assert _summary(repo.diff("a", "main", "c"))[("c", "7")] == MODIFIED
    # a dropped collection: every document removed
    repo.drop_collection("b", "c")
    assert sum(1 for ch in repo.diff("main", "b", "c") if ch.change == REMOVED) == 50
    # bundles and seq views diff like branches
    bundle = repo.create_bundle("a", "snap")
    assert repo.diff(bundle.id, "a") == []
    assert _summary(repo.diff("a@1", "a@2")) == {("c", "2"): REMOVED}


keys = st.integers(0, 5)
step = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(["main", "x", "y"]), keys, st.integers(0, 2)),
    st.tuples(st.just("del"), st.sampled_from(["main", "x", "y"]), keys, st.none()),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(step, max_size=5), st.lists(step, max_size=12))
def test_diff_matches_a_model(repo, before, after):
    """Operations before and after forking x and y from main; diff of every pair of
    refs equals the difference of the model's dicts."""
    coll = "m" + uuid.uuid4().hex[:8]
    x, y = "x" + coll, "y" + coll
    model: dict[str, dict[int, dict]] = {"main": {}}

    def apply(branch: str, op: str, key: int, value: int | None) -> None:
        name = {"main": "main", "x": x, "y": y}[branch]
        docs = model[branch]
        if op == "put":
            repo.put(name, coll, {"_id": key, "v": value})
            docs[key] = {"_id": key, "v": value}
        elif key in docs:
            repo.delete(name, coll, str(key))
            del docs[key]

    for op, _branch, key, value in before:
        apply("main", op, key, value)
    if not repo.collection_exists("main", coll):
        repo.create_collection("main", coll)
    repo.create_branch(x)
    repo.create_branch(y)
    model["x"] = dict(model["main"])
    model["y"] = dict(model["main"])
    for op, branch, key, value in after:
        apply(branch, op, key, value)
    names = {"main": "main", "x": x, "y": y}
    for a in names:
        for b in names:
            expected = {}
            for k in model[a].keys() | model[b].keys():
                if k not in model[b]:
                    expected[(coll, str(k))] = REMOVED
                elif k not in model[a]:
                    expected[(coll, str(k))] = ADDED
                elif model[a][k] != model[b][k]:
                    expected[(coll, str(k))] = MODIFIED
            got = repo.diff(names[a], names[b], coll)
            assert _summary(got) == expected, (a, b)
            for ch in got:
                if ch.change == MODIFIED:
                    k = int(ch.stem)
                    assert ch.fields == [FieldChange("v", model[a][k]["v"], model[b][k]["v"])]


def _full(repo, monkeypatch, old, new, collection=None, fields=True):
    """The diff by the full comparison: both listings merge-joined, as for refs that
    share no history."""
    from argonfs.store.engine import diff as d

    with monkeypatch.context() as m:
        m.setattr(d, "above_shared", lambda *args: None)
        return [(ch.collection, ch.stem, ch.change, ch.fields) for ch in repo.diff(old, new, collection, fields=fields)]


def test_many_changed_names_diff_as_the_listings_do(repo, monkeypatch):
    """Names written above the shared point, compared from the two sides' records and
    the shared checkpoint: the same answer as merge-joining the listings."""
    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(30)))
    base = repo.create_bundle("main", "base")
    repo.create_branch("f", from_ref=base.id)
    for i in range(0, 30, 3):
        repo.put("f", "c", {"_id": i, "v": 1})
    repo.delete("f", "c", "1")
    repo.put("f", "c", {"_id": 99})
    repo.put("f", "c", {"_id": 6, "v": 0})  # back to the base's content: no change
    by_change = [(ch.collection, ch.stem, ch.change, ch.fields) for ch in repo.diff(base.id, "f")]
    assert by_change == _full(repo, monkeypatch, base.id, "f")
    assert len(by_change) == 11


ops = st.one_of(
    st.tuples(st.just("put"), st.sampled_from("mxy"), st.integers(0, 40), st.integers(0, 2)),
    st.tuples(st.just("del"), st.sampled_from("mxy"), st.integers(0, 40), st.none()),
    st.tuples(st.just("import"), st.sampled_from("mxy"), st.integers(0, 40), st.integers(0, 2)),
    st.tuples(st.just("bundle"), st.sampled_from("mxy"), st.none(), st.none()),
    st.tuples(st.just("fork"), st.sampled_from("xy"), st.none(), st.none()),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, max_size=10))
def test_diff_by_the_change_matches_the_full_comparison(repo, monkeypatch, history):
    """Random histories (puts, deletes, imports, bundles, forks of forks, in small
    checkpoint chunks): every pair of refs diffs the same by the change as by
    merge-joining both listings."""
    from argonfs.store.engine import checkpoints

    monkeypatch.setattr(checkpoints, "CHUNK", 4)
    tag = uuid.uuid4().hex[:8]
    coll = "h" + tag
    names = {"m": "main"}
    repo.import_documents("main", coll, ({"_id": i, "v": 0} for i in range(0, 40, 2)))
    refs = ["main"]
    for op, side, key, value in history:
        if side not in names:
            names[side] = f"{side}{tag}"
            repo.create_branch(names[side], from_ref="main")
            refs.append(names[side])
        branch = names[side]
        if op == "put":
            repo.put(branch, coll, {"_id": key, "v": value})
        elif op == "del":
            if any(e.stem == str(key) for e in repo.entries(branch, coll)):
                repo.delete(branch, coll, str(key))
        elif op == "import":  # every third name from key, a bulk write
            repo.import_documents(branch, coll, ({"_id": i, "v": value} for i in range(key, 40, 3)))
        elif op == "bundle":
            refs.append(repo.create_bundle(branch, "b").id)
            sum(1 for _ in repo.entries(refs[-1], coll))  # listed: its checkpoint is written
        else:
            child = f"{branch}-{len(refs)}"
            repo.create_branch(child, from_ref=branch)
            refs.append(child)
    for a in refs:
        for b in refs:
            got = [(ch.collection, ch.stem, ch.change, ch.fields) for ch in repo.diff(a, b, coll)]
            assert got == _full(repo, monkeypatch, a, b, coll), (a, b)
            names_only = [(ch.collection, ch.stem, ch.change) for ch in repo.diff(a, b, coll, fields=False)]
            assert names_only == [t[:3] for t in got]


def test_a_one_percent_diff_reads_a_fraction_of_the_chunks(repo, monkeypatch):
    """1% of a collection changed in a fork: the diff reads the checkpoint chunks those
    names fall in, a small fraction of the listing's."""
    from argonfs.store.engine import checkpoints

    monkeypatch.setattr(checkpoints, "CHUNK", 20)
    n = 2000
    repo.import_documents("main", "c", ({"_id": f"{i:05}", "v": 0} for i in range(n)))
    base = repo.create_bundle("main", "base")
    repo.create_branch("f", from_ref=base.id)
    repo.import_documents("f", "c", ({"_id": f"{i:05}", "v": 1} for i in range(0, n, 100)))
    sum(1 for _ in repo.entries(base.id, "c"))  # the bundle listed once, as the benchmark does
    listed = checkpoints.chunks_read
    sum(1 for _ in repo.entries(base.id, "c"))
    whole = checkpoints.chunks_read - listed
    assert whole >= n // 20
    before = checkpoints.chunks_read
    changes = repo.diff(base.id, "f", fields=False)
    read = checkpoints.chunks_read - before
    assert [ch.change for ch in changes] == ["modified"] * (n // 100)
    assert 0 < read <= n // 100 + 2 and read <= whole // 4, (read, whole)
