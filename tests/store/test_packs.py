"""Packs (store/engine/packs.py): a bulk write's records and documents, many slots to a stored
row, read by slot, by name and as bodies; gc blanks a packed record in place."""

from __future__ import annotations

from datetime import timedelta

import pytest

from argonfs.store import Repository
from argonfs.store.engine import packs
from argonfs.store.engine import versions as v

NOW = timedelta(0)


def _docs(n: int, tag: str = "") -> list[dict]:
    return [{"_id": f"d{i:04d}", "i": i, "tag": tag, "nested": {"list": [i, str(i)]}} for i in range(n)]


def _read(repo: Repository, ref: str, collection: str = "c") -> dict[str, dict]:
    return {d.stem: d.doc for d in repo.documents(ref, collection)}


def _forget_ranges() -> None:
    """A fresh process: no range records known, so reads go through the records."""
    v._RANGES.clear()
    packs.forget()


def test_an_import_packs_its_documents_and_every_reader_finds_them(repo: Repository) -> None:
    docs = _docs(600)
    docs[300]["big"] = "x" * (packs.MAX_DOC + 1)  # keeps its own record, splitting the run
    repo.import_documents("main", "c", docs)
    bid = repo.resolve("main").branch_id
    (rng,) = v.ranges(repo._versions, bid)
    assert rng["pk"] == [[0, 256], [256, 44], [301, 256], [557, 43]]
    rows = {r["_id"]: r for r in repo.db[packs.PACKS].find()}
    assert sorted(r["n"] for r in rows.values()) == [43, 44, 256, 256]
    assert [r["k"] for r in repo.db[v.BULK].find()] == ["d0300"]  # the large one, in a row of its own
    first = rng["s"] + 1
    records = {r["s"]: r for r in v.by_ids(repo._versions, [v.slot_id(bid, s) for s in range(first, first + 600)])}
    assert sorted(records) == list(range(first, first + 600))
    assert records[first + 300]["k"] == "d0300" and "p" not in records[first + 300]
    assert records[first + 5]["p"] == v.slot_id(bid, first) and records[first + 5]["d"] == docs[5]
    alone, packed = repo.db[v.BULK].find_one(), records[first + 5]  # a record in a row of its own, one from a pack
    assert set(packed) == set(alone) | {"p"}
    assert all(packed[f] == alone[f] for f in ("b", "c", "op", "a", "t", "x", "xk"))
    assert "d" not in next(v.by_ids(repo._versions, [v.slot_id(bid, first + 5)], v.NO_BODY))

    expected = {d["_id"]: d for d in docs}
    bundle = repo.create_bundle("main", "imported").id
    assert _read(repo, "main") == expected
    _forget_ranges()
    assert _read(repo, bundle) == expected  # through the records' pack names
    assert repo.get("main", "c", "d0299").doc == expected["d0299"]
    assert repo.get("main", "c", "d0300").doc == expected["d0300"]

    repo.create_branch("fork")
    repo.import_documents("fork", "c", [{**d, "tag": "again"} if d["i"] % 100 == 7 else d for d in docs])
    repo.put("fork", "c", {"_id": "d0001", "i": -1})
    changed = {c.stem: c for c in repo.diff(bundle, "fork")}
    assert set(changed) == {"d0001", *(f"d{i:04d}" for i in range(7, 600, 100))}
    assert [(f.path, f.new) for f in changed["d0007"].fields] == [("tag", "again")]
    assert repo.get(f"main@{rng['s'] + 600 + 1}", "c", "d0599").doc == expected["d0599"]  # time travel: the import's commit slot


def test_documents_from_packs_are_each_callers_own(repo: Repository) -> None:
    repo.import_documents("main", "c", _docs(10))
    first = repo.get("main", "c", "d0003").doc
    first["nested"]["list"].append("changed by a caller")
    assert repo.get("main", "c", "d0003").doc == _docs(10)[3]


def test_unpacked_bulk_records_of_format_3_read_beside_packed_ones(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(packs, "MAX_DOC", -1)  # format 3: every record in a row of its own
        repo.import_documents("main", "c", _docs(300, "old"))
    assert repo.db[packs.PACKS].count_documents({}) == 0 and repo.db[v.BULK].count_documents({}) == 300
    assert "pk" not in v.ranges(repo._versions, repo.resolve("main").branch_id)[0]
    repo.import_documents("main", "c", [d for d in _docs(600, "new") if d["i"] % 2])
    expected = {d["_id"]: d for d in _docs(300, "old")} | {d["_id"]: d for d in _docs(600, "new") if d["i"] % 2}
    assert _read(repo, "main") == expected
    _forget_ranges()
    assert _read(repo, "main") == expected


def test_gc_blanks_packed_records_in_place(repo: Repository) -> None:
    repo.import_documents("main", "c", _docs(10, "main"))
    repo.create_branch("gone")
    repo.import_documents("gone", "c", _docs(300, "gone"))
    repo.create_branch("kept")
    repo.import_documents("kept", "c", _docs(300, "kept"))
    repo.import_documents("kept", "c", [d for d in _docs(300, "newer") if d["i"] < 10])
    bundle = repo.create_bundle("kept", "read").id
    gone, kept = (repo.resolve(b).branch_id for b in ("gone", "kept"))
    repo.delete_branch("gone", force=True)
    repo.delete_branch("kept", force=True)
    rows = repo.db[packs.PACKS].count_documents({})

    report = repo.gc(min_age=NOW, grace=NOW)
    # gone: everything; kept: the ten versions its bundle does not see
    assert report.records["deleted branches"] == 300 + 10
    assert repo.db[packs.PACKS].count_documents({}) == rows  # every record stays
    blanked = [r for r in packs.all_records(repo.db) if "gc" in r]
    assert len(blanked) == 310 and all("d" not in r for r in blanked)
    assert {r["b"] for r in blanked} == {gone, kept}
    assert sorted(r["k"] for r in blanked if r["b"] == kept) == [f"d{i:04d}" for i in range(10)]
    expected = {d["_id"]: d for d in _docs(300, "kept")} | {d["_id"]: d for d in _docs(10, "newer")}
    _forget_ranges()
    assert _read(repo, bundle) == expected
    assert _read(repo, "main") == {d["_id"]: d for d in _docs(10, "main")}
    assert repo.gc(min_age=NOW, grace=NOW).total_records == 0
