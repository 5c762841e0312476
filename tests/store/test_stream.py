"""Repository.stream_bodies and count: a whole collection's bodies straight from its packs,
in listing order, equal to what point reads return, over packed, changed and deleted documents."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argonfs.store import Repository


def _point_reads(repo: Repository, ref: str, collection: str) -> list[tuple[str, bytes]]:
    return [(e.stem, repo.get(ref, collection, e.stem).rendered) for e in repo.entries(ref, collection)]


def _streamed(repo: Repository, ref: str, collection: str, window: int) -> list[tuple[str, bytes]]:
    return [(e.stem, body) for e, body in repo.stream_bodies(ref, collection, window=window)]


def test_stream_bodies_equal_point_reads_over_packs_changes_and_deletes(repo: Repository) -> None:
    # in reverse name order, so a listing in name order reaches across several packs
    repo.import_documents("main", "c", ({"_id": f"d{i:04d}", "v": i} for i in reversed(range(700))), batch_size=300)
    repo.create_branch("f")
    repo.put("f", "c", {"_id": "d0005", "v": "changed"})
    repo.put("f", "c", {"_id": "new", "v": "added"})
    repo.delete("f", "c", "d0006")
    repo.delete("f", "c", "d0650")
    expected = _point_reads(repo, "f", "c")
    for window in (100, 5000):
        streamed = _streamed(repo, "f", "c", window)
        assert streamed == expected
        assert [s for s, _ in streamed] == sorted({f"d{i:04d}" for i in range(700)} - {"d0006", "d0650"} | {"new"})
    assert b"changed" in dict(_streamed(repo, "f", "c", 64))["d0005"]
    assert _streamed(repo, "main", "c", 64) == _point_reads(repo, "main", "c")  # main still sees the import
    assert repo.count("f", "c") == 699 and repo.count("main", "c") == 700
    bundle = repo.create_bundle("f", "b")
    assert repo.count(bundle.id, "c") == 699
    assert _streamed(repo, bundle.id, "c", 256) == expected


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    n=st.integers(0, 60),
    changed=st.sets(st.integers(0, 70), max_size=10),
    deleted=st.sets(st.integers(0, 59), max_size=10),
    window=st.integers(1, 40),
)
def test_stream_bodies_model(repo: Repository, n: int, changed: set[int], deleted: set[int], window: int) -> None:
    branch = f"b{n}-{len(changed)}-{len(deleted)}-{window}-{abs(hash((frozenset(changed), frozenset(deleted)))) % 10**6}"
    repo.create_branch(branch)
    coll = "m" + branch.replace("-", "_")
    repo.import_documents(branch, coll, ({"_id": i, "v": i} for i in range(n)), batch_size=17)
    for i in sorted(changed):
        repo.put(branch, coll, {"_id": i, "v": f"x{i}"})
    for i in sorted(deleted):
        if i < n and i not in changed:
            repo.delete(branch, coll, str(i))
    if not n and not changed:
        return
    assert _streamed(repo, branch, coll, window) == _point_reads(repo, branch, coll)
    assert repo.count(branch, coll) == len(list(repo.entries(branch, coll)))
