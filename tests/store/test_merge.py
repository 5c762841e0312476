"""merge: disjoint changes, every conflict kind, repeated merges, a branch of a branch,
atomicity, and the repository against the document-merge model."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argonfs.errors import NotFound, ReadOnly
from argonfs.store.engine import commits
from argonfs.store.engine import versions as v
from argonfs.store.repo.merge import ADD_ADD, DELETE_MODIFY, DROP_MODIFY, FIELD, merge_document


def docs(repo, ref, collection="c"):
    try:
        return {e.stem: repo.get(ref, collection, e.stem).doc for e in repo.entries(ref, collection)}
    except NotFound:
        return None


@pytest.fixture
def forked(repo):
    repo.import_documents("main", "c", ({"_id": i, "a": i, "b": i} for i in range(10)))
    repo.create_branch("f")
    return repo


def test_disjoint_changes_merge(forked):
    repo = forked
    repo.put("f", "c", {"_id": 1, "a": "f", "b": 1})  # field a on f
    repo.put("main", "c", {"_id": 1, "a": 1, "b": "main"})  # field b on main
    repo.delete("f", "c", "2")
    repo.put("f", "c", {"_id": 20})
    repo.put("main", "c", {"_id": 3, "a": "main", "b": 3})
    r = repo.merge("f", "main")
    assert r.conflicts == [] and (r.added, r.updated, r.deleted) == (1, 1, 1)
    merged = docs(repo, "main")
    assert merged["1"] == {"_id": 1, "a": "f", "b": "main"}
    assert "2" not in merged and merged["20"] == {"_id": 20} and merged["3"]["a"] == "main"
    log = list(repo.log("main"))
    assert log[0].op == "merge" and log[0].collection == ""  # the commit record names the merge
    assert [e.txn == log[0].txn and e.txn_kind == "merge" for e in log[1 : r.changes + 1]] == [True] * r.changes


def test_each_conflict_kind_and_strategies(forked):
    repo = forked
    repo.put("f", "c", {"_id": 1, "a": "f", "b": 1})
    repo.put("main", "c", {"_id": 1, "a": "main", "b": 1})  # field
    repo.delete("f", "c", "2")
    repo.put("main", "c", {"_id": 2, "a": "changed", "b": 2})  # delete vs modify
    repo.put("f", "c", {"_id": 30, "v": "f"})
    repo.put("main", "c", {"_id": 30, "v": "main"})  # same new id, different content
    repo.put("main", "d", {"_id": 1})
    repo.create_branch("g")
    repo.drop_collection("g", "d")
    repo.put("main", "d", {"_id": 1, "x": 1})  # dropped vs modified
    head = repo.head("main")
    r = repo.merge("f", "main")
    kinds = sorted((c, s, k.kind, k.path) for c, s, k in r.conflicts)
    assert kinds == [("c", "1", FIELD, "a"), ("c", "2", DELETE_MODIFY, "$"), ("c", "30", ADD_ADD, "$")]
    assert repo.head("main") == head and r.seq is None  # fail: nothing changed
    r = repo.merge("g", "main")
    assert [(c, k.kind) for c, _s, k in r.conflicts] == [("d", DROP_MODIFY)]
    ours = repo.merge("f", "main", strategy="ours", dry_run=True)
    assert ours.seq is None and repo.head("main") == head
    repo.merge("f", "main", strategy="theirs")
    merged = docs(repo, "main")
    assert merged["1"]["a"] == "f" and "2" not in merged and merged["30"] == {"_id": 30, "v": "f"}


def test_source_drop_applies_when_the_target_did_not_touch_it(repo):
    repo.put("main", "d", {"_id": 1})
    repo.create_branch("g")
    repo.drop_collection("g", "d")
    r = repo.merge("g", "main")
    assert r.dropped == ["d"] and not repo.collection_exists("main", "d")


def test_repeated_merges_bring_only_what_is_new(forked):
    repo = forked
    repo.put("f", "c", {"_id": 1, "a": "f1", "b": 1})
    repo.merge("f", "main")
    repo.put("main", "c", {"_id": 1, "a": "main-later", "b": 1})  # main changes the merged doc
    repo.put("f", "c", {"_id": 4, "a": "f4", "b": 4})
    r = repo.merge("f", "main")
    assert r.conflicts == [] and (r.added, r.updated, r.deleted) == (0, 1, 0)
    assert docs(repo, "main")["1"]["a"] == "main-later"  # not reverted by the second merge
    assert docs(repo, "main")["4"]["a"] == "f4"
    assert repo.merge("f", "main").changes == 0
    # and back: main's changes into f
    r = repo.merge("main", "f")
    assert r.conflicts == [] and docs(repo, "f") == docs(repo, "main")


def test_merge_of_a_branch_of_a_branch(forked):
    repo = forked
    repo.create_branch("g", "f")
    repo.put("g", "c", {"_id": 5, "a": "g", "b": 5})
    repo.put("main", "c", {"_id": 6, "a": "main", "b": 6})
    r = repo.merge("g", "main")
    assert r.conflicts == [] and docs(repo, "main")["5"]["a"] == "g" and docs(repo, "main")["6"]["a"] == "main"


def test_merge_is_atomic_for_readers_bundles_and_forks(repo):
    repo.create_collection("main", "c")
    repo.create_branch("f")
    repo.import_documents("f", "c", ({"_id": i} for i in range(300)))
    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(sum(1 for _ in repo.entries("main", "c")))

    t = threading.Thread(target=reader)
    t.start()
    try:
        repo.merge("f", "main")
    finally:
        stop.set()
        t.join()
    assert seen <= {0, 300}, sorted(seen)
    # records of an uncommitted operation are invisible, and a view pinned inside the
    # operation's slots never sees it, even after the commit
    bid = repo.branch("main").id
    recs = [repo._record(v.PUT, "c", f"x{i}", {"_id": f"x{i}"}) for i in range(3)]
    for rec in recs:
        rec["x"] = "crashed"
    base = repo.head("main")
    commits.append(repo._versions, bid, recs, base)
    assert repo.head("main") == base + 3 and sum(1 for _ in repo.entries("main", "c")) == 300
    inside = repo.create_bundle(f"main@{base + 2}", "inside")
    commits.append(repo._versions, bid, [{"c": v.COMMITS, "k": "crashed", "op": v.COMMIT, "a": "tester", "t": recs[0]["t"]}], base + 3)
    time.sleep(commits.PENDING_RECHECK)  # a transaction seen uncommitted is re-checked after this long
    assert sum(1 for _ in repo.entries("main", "c")) == 303
    assert sum(1 for _ in repo.entries(inside.id, "c")) == 300
    with pytest.raises(ReadOnly):
        repo.merge("f", inside.id)


values = st.fixed_dictionaries({}, optional={"a": st.integers(0, 2), "b": st.integers(0, 2)})
op = st.tuples(st.sampled_from(["put", "del"]), st.integers(0, 4), values)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(op, max_size=5), st.lists(op, max_size=6), st.lists(op, max_size=6), st.sampled_from(["ours", "theirs"]))
def test_merge_matches_the_model(repo, base_ops, ours_ops, theirs_ops, strategy):
    coll = "m" + uuid.uuid4().hex[:8]
    t, s = "t" + coll, "s" + coll

    def apply(branch: str, ops: list, state: dict) -> None:
        for kind, key, val in ops:
            if kind == "put":
                repo.put(branch, coll, {"_id": key, **val})
                state[key] = {"_id": key, **val}
            elif key in state:
                repo.delete(branch, coll, str(key))
                del state[key]

    base: dict = {}
    repo.create_collection("main", coll)
    apply("main", base_ops, base)
    repo.create_branch(t)
    repo.create_branch(s)
    ours, theirs = dict(base), dict(base)
    apply(t, ours_ops, ours)
    apply(s, theirs_ops, theirs)
    expected = {}
    for key in base.keys() | ours.keys() | theirs.keys():
        b, o, th = base.get(key), ours.get(key), theirs.get(key)
        merged, conflicts = merge_document(b, o, th)
        if conflicts and strategy == "theirs":
            merged, _ = merge_document(b, th, o)
        if merged is not None:
            expected[str(key)] = merged
    repo.merge(s, t, strategy=strategy)
    assert docs(repo, t, coll) == expected


def _merge_full(repo, monkeypatch, source, target, **kw):
    """The merge with every name of the three views a candidate: the full three-way
    comparison the merge by the change must agree with."""
    import contextlib

    from argonfs.store.repo.merges import Merges

    def every_name(self, base, src, tgt):
        colls: set[str] = set()
        for view in (base, src, tgt):
            colls |= set(self.collections(view))
        for c in sorted(colls):
            stems: set[str] = set()
            for view in (base, src, tgt):
                with contextlib.suppress(NotFound):
                    stems.update(e.stem for e in self.entries(view, c))
            yield c, sorted(stems), True

    with monkeypatch.context() as m:
        m.setattr(Merges, "_merge_candidates", every_name)
        return repo.merge(source, target, **kw)


def _outcome(result):
    return sorted(result.documents), sorted((c, s, repr(x)) for c, s, x in result.conflicts), sorted(result.dropped)


history_op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from("bot"), st.integers(0, 30), st.integers(0, 2)),
    st.tuples(st.just("del"), st.sampled_from("bot"), st.integers(0, 30), st.none()),
    st.tuples(st.just("import"), st.sampled_from("bot"), st.integers(0, 30), st.integers(0, 2)),
    st.tuples(st.just("bundle"), st.sampled_from("bot"), st.none(), st.none()),
    st.tuples(st.just("merge"), st.sampled_from(["ot", "to"]), st.none(), st.none()),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(history_op, max_size=10), st.sampled_from(["fail", "ours", "theirs"]))
def test_merge_by_the_change_matches_the_full_comparison(repo, monkeypatch, history, strategy):
    """Random histories (puts, deletes, imports, bundles, earlier merges either way, in
    small checkpoint chunks): the merge reading only the source's change writes the
    same documents and finds the same conflicts as the one comparing every name."""
    from argonfs.store.engine import checkpoints

    monkeypatch.setattr(checkpoints, "CHUNK", 4)
    tag = uuid.uuid4().hex[:8]
    coll = "h" + tag
    repo.import_documents("main", coll, ({"_id": i, "v": 0} for i in range(0, 30, 2)))
    base = "b" + tag
    repo.create_branch(base, from_ref="main")
    names = {"b": base}
    for op, side, key, value in history:
        if op == "merge":
            for s in side:
                if s not in names:
                    names[s] = f"{s}{tag}"
                    repo.create_branch(names[s], from_ref=base)
            repo.merge(names[side[0]], names[side[1]], strategy="ours")
            continue
        if side not in names:
            names[side] = f"{side}{tag}"
            repo.create_branch(names[side], from_ref=base)
        branch = names[side]
        if op == "put":
            repo.put(branch, coll, {"_id": key, "v": value})
        elif op == "del":
            if any(e.stem == str(key) for e in repo.entries(branch, coll)):
                repo.delete(branch, coll, str(key))
        elif op == "import":
            repo.import_documents(branch, coll, ({"_id": i, "v": value} for i in range(key, 30, 3)))
        else:
            bundle = repo.create_bundle(branch, "b")
            sum(1 for _ in repo.entries(bundle.id, coll))  # listed: its checkpoint is written
    for s in "ot":
        if s not in names:
            names[s] = f"{s}{tag}"
            repo.create_branch(names[s], from_ref=base)
    for source, target in ((names["t"], names["o"]), (names["o"], names["t"])):
        got = repo.merge(source, target, strategy=strategy, dry_run=True)
        want = _merge_full(repo, monkeypatch, source, target, strategy=strategy, dry_run=True)
        assert _outcome(got) == _outcome(want), (source, target)


def test_a_one_percent_merge_reads_only_the_sources_change(repo, monkeypatch):
    """1% of a collection changed on the source, 5% on the target: the merge looks up
    only the source's names (on the base, the target and the source), reads at most the
    chunks those names fall in on each side (fewer than one listing), and writes the
    source's change."""
    from argonfs.store.engine import checkpoints, lookup

    monkeypatch.setattr(checkpoints, "CHUNK", 20)
    n = 2000
    repo.import_documents("main", "c", ({"_id": f"{i:05}", "v": 0} for i in range(n)))
    repo.create_branch("src")
    repo.create_branch("tgt")
    repo.import_documents("src", "c", ({"_id": f"{i:05}", "v": 1} for i in range(0, n, 100)))
    repo.import_documents("tgt", "c", ({"_id": f"{i:05}", "v": 2} for i in range(1, n, 20)))
    looked: list[str] = []
    real = lookup.lookup_many

    def counting(versions, chain, collection, stems, **kw):
        looked.extend(stems)
        return real(versions, chain, collection, stems, **kw)

    monkeypatch.setattr(lookup, "lookup_many", counting)
    before = checkpoints.chunks_read
    result = repo.merge("src", "tgt", dry_run=True)
    read = checkpoints.chunks_read - before
    assert sorted(s for _, s, _ in result.documents) == [f"{i:05}" for i in range(0, n, 100)]
    assert result.conflicts == []
    assert len(looked) == 3 * (n // 100), len(looked)
    assert read <= 3 * (n // 100) < n // 20, read  # at most a chunk per name per side, under one listing
    repo.merge("src", "tgt")
    assert docs(repo, "tgt")["00001"]["v"] == 2 and docs(repo, "tgt")["00100"]["v"] == 1
