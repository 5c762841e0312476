"""updateDescription applied to a pre-image, and sources parsed; pure."""

from __future__ import annotations

import pytest

from argonfs.capture import apply_update, parse_source
from argonfs.errors import InvalidDocument


def test_fields_set_removed_and_arrays_truncated() -> None:
    before = {"_id": 1, "a": 1, "n": {"m": 1, "k": [1, 2, 3, 4]}, "gone": True}
    desc = {"updatedFields": {"a": 2, "n.m": 5, "n.k.1": 9, "new.deep": "x"}, "removedFields": ["gone"], "truncatedArrays": [{"field": "n.k", "newSize": 3}]}
    after = apply_update(before, desc)
    assert after == {"_id": 1, "a": 2, "n": {"m": 5, "k": [1, 9, 3]}, "new": {"deep": "x"}}
    assert before["n"]["k"] == [1, 2, 3, 4]  # the pre-image is not changed in place


def test_disambiguated_paths_name_fields_with_dots_and_digits() -> None:
    before = {"_id": 1, "m": {"a.b": 1, "0": "zero"}}
    desc = {"updatedFields": {"m.a.b": 2, "m.0": "nil"}, "removedFields": [], "disambiguatedPaths": {"m.a.b": ["m", "a.b"]}}
    assert apply_update(before, desc) == {"_id": 1, "m": {"a.b": 2, "0": "nil"}}


def test_array_element_set_past_the_end_pads_with_null() -> None:
    assert apply_update({"_id": 1, "a": [1]}, {"updatedFields": {"a.3": 4}}) == {"_id": 1, "a": [1, None, None, 4]}


def test_sources_are_shown_without_credentials() -> None:
    spec = parse_source("mongodb://user:secret@db1:27017,db2:27018/shop.orders?replicaSet=rs0")
    assert (spec.db, spec.collection) == ("shop", "orders")
    assert spec.shown == "mongodb://db1:27017,db2:27018/shop.orders"
    assert "secret" not in spec.shown
    whole = parse_source("mongodb://h/shop", ["a", "b"])
    assert whole.wants("a") and not whole.wants("c") and not whole.wants("system.views")


def test_a_source_must_name_a_database() -> None:
    with pytest.raises(InvalidDocument, match="must name a database"):
        parse_source("mongodb://h/")
    with pytest.raises(InvalidDocument, match="whole-database"):
        parse_source("mongodb://h/db.coll", ["other"])
