"""Three-way merge of documents (pure logic)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from argonfs.store.repo.merge import ADD_ADD, DELETE_MODIFY, FIELD, MergeConflict, merge_document

leaf = st.one_of(st.integers(-3, 3), st.text("ab", max_size=2), st.booleans(), st.none(), st.floats(-2, 2, allow_nan=False))
value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3), max_leaves=8)
docs = st.dictionaries(st.sampled_from("abcdef"), value, max_size=5).map(lambda d: {"_id": 1, **d})


@given(docs, docs)
def test_one_sided_changes_win(base, changed):
    assert merge_document(base, changed, base) == (changed, [])
    assert merge_document(base, base, changed) == (changed, [])
    assert merge_document(base, changed, changed) == (changed, [])
    assert merge_document(base, None, base) == (None, [])
    assert merge_document(None, None, changed) == (changed, [])


@given(docs, st.data())
def test_changes_to_different_fields_combine(base, data):
    fields = sorted(set("abcdef"))
    ours_fields = data.draw(st.sets(st.sampled_from(fields)))
    rest = [f for f in fields if f not in ours_fields]
    theirs_fields = data.draw(st.sets(st.sampled_from(rest))) if rest else set()
    ours, theirs = dict(base), dict(base)
    for f in ours_fields:
        ours[f] = ["ours", f]
    for f in theirs_fields:
        if f in theirs and data.draw(st.booleans()):
            del theirs[f]
        else:
            theirs[f] = ["theirs", f]
    merged, conflicts = merge_document(base, ours, theirs)
    assert conflicts == []
    for f in fields:
        if f in ours_fields:
            assert merged[f] == ["ours", f]
        elif f in theirs_fields:
            assert merged.get(f) == theirs.get(f) and (f in merged) == (f in theirs)
        else:
            assert merged.get(f) == base.get(f)


@given(docs, docs, docs)
def test_conflicts_are_symmetric(base, ours, theirs):
    _, one = merge_document(base, ours, theirs)
    _, other = merge_document(base, theirs, ours)
    assert sorted((c.kind, c.path) for c in one) == sorted((c.kind, c.path) for c in other)


def test_each_conflict_kind():
    base = {"_id": 1, "n": {"a": 1, "b": 1}, "t": "x"}
    merged, conflicts = merge_document(base, {"_id": 1, "n": {"a": 2, "b": 1}, "t": "y"}, {"_id": 1, "n": {"a": 3, "b": 5}, "t": "x"})
    assert conflicts == [MergeConflict(FIELD, "n.a", 1, 2, 3)]
    assert merged == {"_id": 1, "n": {"a": 2, "b": 5}, "t": "y"}  # the rest merged; ours kept where they conflict
    assert merge_document(base, None, {**base, "t": "z"})[1] == [MergeConflict(DELETE_MODIFY, "$", base, None, {**base, "t": "z"})]
    assert merge_document(None, {"_id": 1, "v": 1}, {"_id": 1, "v": 2})[1][0].kind == ADD_ADD
    assert merge_document(None, {"_id": 1, "v": 1}, {"_id": 1, "v": 1}) == ({"_id": 1, "v": 1}, [])
    # a number changing type is a change: 1 -> 1.0 on one side only is not a conflict
    assert merge_document({"_id": 1, "v": 1}, {"_id": 1, "v": 1.0}, {"_id": 1, "v": 1}) == ({"_id": 1, "v": 1.0}, [])
    # a field removed on one side and changed on the other conflicts at that field
    assert merge_document({"_id": 1, "v": 1}, {"_id": 1}, {"_id": 1, "v": 2})[1] == [MergeConflict(FIELD, "v", 1, None, 2)]
