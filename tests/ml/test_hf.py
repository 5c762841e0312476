"""Hugging Face datasets: rows from a snapshot, a fingerprint from its digest, the Arrow
cache reused for the same data and never for other data, live branches refused."""

from __future__ import annotations

import datetime

import pytest
from bson import Decimal128, ObjectId

from argonfs.ml import Pin, pin
from argonfs.ml.hf import fingerprint, plain, to_dataset
from tests.ml.conftest import people


def test_rows_fingerprint_and_cache_reuse(filled, tmp_path, monkeypatch) -> None:
    snap = pin("main", repo=filled)
    ds = to_dataset(snap, "people", cache_dir=str(tmp_path))
    assert len(ds) == 10 and ds.column_names == ["_id", "name", "tag", "score"]
    assert [ds[i] for i in range(10)] == sorted(people(10), key=lambda d: str(d["_id"]))  # name order
    assert ds._fingerprint == fingerprint(snap, "people")

    # the same data in another bundle: the cache is used, no body is read
    filled.create_branch("copy", empty=True)
    filled.import_documents("copy", "people", people(10))
    same = pin("copy", repo=filled)
    assert same.bundle != snap.bundle

    def no_reads(self, collection):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(Pin, "documents", no_reads)
        again = to_dataset(same, "people", cache_dir=str(tmp_path))
    assert again._fingerprint == ds._fingerprint and again.cache_files == ds.cache_files

    # other data: another fingerprint, the new rows
    filled.put("copy", "people", {"_id": 0, "name": "changed", "tag": "v2", "score": 0.0})
    changed = to_dataset(pin("copy", repo=filled), "people", cache_dir=str(tmp_path))
    assert changed._fingerprint != ds._fingerprint and changed[0]["name"] == "changed"
    # another transform of the same data: another fingerprint too
    upper = to_dataset(snap, "people", transform=lambda d: {"name": d["name"].upper()}, cache_dir=str(tmp_path))
    assert upper._fingerprint != ds._fingerprint and upper[0] == {"name": "PERSON 0"}


def test_refs_a_live_branch_is_refused(filled, tmp_path) -> None:
    with pytest.raises(ValueError, match="pin it first"):
        to_dataset("main", "people", repo=filled, cache_dir=str(tmp_path))
    bundles = len(filled.list_bundles())
    at = to_dataset(f"main@{filled.head('main')}", "people", repo=filled, cache_dir=str(tmp_path))  # bundled first
    assert len(filled.list_bundles()) == bundles + 1 and len(at) == 10
    filled.create_bundle("main", "v1", label="production")
    assert to_dataset("production", "people", repo=filled, cache_dir=str(tmp_path))._fingerprint == at._fingerprint


def test_plain_makes_bson_values_arrow_friendly() -> None:
    oid = ObjectId()
    t = datetime.datetime(2026, 1, 2, 3, 4, 5)
    doc = {"_id": oid, "n": Decimal128("1.5"), "t": t, "sub": {"ids": [oid]}, "b": b"x"}
    assert plain(doc) == {"_id": str(oid), "n": "1.5", "t": t, "sub": {"ids": [str(oid)]}, "b": b"x"}
