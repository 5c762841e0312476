"""How names resolve (argonfs.naming.resolve_name): a bundle id, then a branch, then a
label, and names of a bundle id's shape are only ever bundles."""

from __future__ import annotations

import pytest

from argonfs.errors import InvalidName, ReadOnly
from argonfs.store import Repository
from argonfs.store.repo.model import new_bundle_id


def test_a_bundle_id_wins_over_a_branch_of_its_name(repo: Repository) -> None:
    repo.put("main", "c", {"_id": "a", "v": 1})
    bundle = repo.create_bundle("main", "v1")
    repo.put("main", "c", {"_id": "a", "v": 2})
    # a branch named after the bundle, as an older argonfs's pull made one
    old = repo.create_branch("legacy")
    repo.db["branch_names"].insert_one({"_id": bundle.id, "bid": old.id})
    view = repo.resolve(bundle.id)
    assert (view.kind, view.bundle) == ("bundle", bundle.id)
    assert repo.get(bundle.id, "c", "a").doc["v"] == 1
    with pytest.raises(ReadOnly):
        repo.put(bundle.id, "c", {"_id": "a", "v": 3})
    with pytest.raises(ReadOnly):
        repo.delete(bundle.id, "c", "a")


def test_branch_and_label_names_of_a_bundle_ids_shape_are_refused(repo: Repository) -> None:
    bundle = repo.create_bundle("main", "v1")
    for name in (bundle.id, new_bundle_id(), "0123456789abcd"):
        with pytest.raises(InvalidName, match="shape of a bundle id"):
            repo.create_branch(name)
        with pytest.raises(InvalidName, match="shape of a bundle id"):
            repo.set_label(name, bundle.id)
    for name in ("0123456789abcde", "0123456789abci", "0123456789ABCD", "experiment1234"):  # other shapes are names
        repo.create_branch(name)
        assert repo.resolve(name).kind == "branch"


def test_a_branch_comes_before_a_label_of_its_name(repo: Repository) -> None:
    repo.put("main", "c", {"_id": "a", "v": 1})
    bundle = repo.create_bundle("main", "v1", label="prod")
    assert repo.resolve("prod").kind == "label"
    repo.create_branch("prod")
    assert repo.resolve("prod").kind == "branch"  # what a pull of label prod writes
    assert repo.resolve(bundle.id).kind == "bundle"


def test_a_staged_branch_is_named_only_once_and_gc_reclaims_an_abandoned_one(repo: Repository) -> None:
    from datetime import timedelta

    from argonfs.errors import Conflict
    from argonfs.store import Change
    from argonfs.store.engine.versions import MKCOL, PUT

    staged = repo.stage_branch("later", pull=new_bundle_id())
    assert [b.name for b in repo.list_branches()] == ["main"]
    repo.apply(staged, [Change(MKCOL, "c"), Change(PUT, "c", "a", {"_id": "a", "v": 1})], kind="pull")
    assert repo.gc(min_age=timedelta(0), grace=timedelta(hours=1)).total_records == 0  # recent: a pull in flight
    report = repo.gc(min_age=timedelta(0), grace=timedelta(0))
    assert report.records["deleted branches"] == 1  # no name, no bundle, idle: reclaimed
    kept = repo.stage_branch("kept", pull=new_bundle_id())
    repo.name_branch(kept, "kept")
    with pytest.raises(Conflict):
        repo.name_branch(kept, "again")
    with pytest.raises(Conflict):
        repo.name_branch(repo.resolve("main"), "other")
    assert [b.name for b in repo.list_branches()] == ["kept", "main"]
