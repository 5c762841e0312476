"""pin(): bundles for moving refs, identities, and digests that follow the data."""

from __future__ import annotations

import pickle

import pytest

from argonfs.errors import Corrupt, NotFound
from argonfs.ml import Pin, pin
from tests.ml.conftest import people


def test_a_branch_is_bundled_and_its_identity_recorded(filled) -> None:
    before = {b.id for b in filled.list_bundles()}
    snap = pin("main", repo=filled)
    assert snap.bundle not in before and filled.bundle(snap.bundle).seq == snap.seq == filled.head("main")
    assert (snap.repository, snap.branch, snap.collections, snap.count, snap.ref, snap.label) == (filled.db.name, "main", ("people",), 10, "main", None)
    assert snap.server == filled.where
    filled.put("main", "people", {"_id": 99})
    assert len(list(snap.documents("people"))) == 10  # the branch moved; the snapshot did not


def test_a_bundle_or_label_is_used_as_it_is(filled) -> None:
    b = filled.create_bundle("main", "v1", label="production")
    count = len(filled.list_bundles())
    by_label = pin("production", repo=filled)
    assert (by_label.bundle, by_label.label) == (b.id, "production")
    assert pin(b.id, repo=filled).bundle == b.id
    assert len(filled.list_bundles()) == count


def test_same_data_same_digest_whichever_bundle_holds_it(filled) -> None:
    first = pin("main", repo=filled)
    filled.create_branch("other", empty=True)
    filled.import_documents("other", "people", people(10))
    elsewhere = pin("other", repo=filled)
    assert elsewhere.bundle != first.bundle and elsewhere.branch == "other"
    assert elsewhere.digest == first.digest
    filled.put("other", "people", {"_id": 3, "name": "changed", "tag": "v1", "score": 0.3})
    assert pin("other", repo=filled).digest != first.digest
    filled.put("other", "people", people(10)[3])  # back to the same content
    assert pin("other", repo=filled).digest == first.digest


def test_digest_covers_names_and_the_chosen_collections(filled) -> None:
    filled.import_documents("main", "other", [{"_id": "x"}])
    both = pin("main", repo=filled)
    only = pin(both.bundle, ["people"], repo=filled)
    assert both.collections == ("other", "people") and only.collections == ("people",)
    assert (both.count, only.count) == (11, 10) and both.digest != only.digest
    filled.rename("main", "people", "9", "people", "nine")  # same body, another name
    assert pin("main", ["people"], repo=filled).digest != only.digest
    with pytest.raises(NotFound):
        pin(both.bundle, ["missing"], repo=filled)
    with pytest.raises(NotFound, match="not in snapshot"):
        next(only.documents("other"))


def test_identity_round_trips_and_reconnects(filled) -> None:
    snap = pin("main", repo=filled)
    again = Pin.from_dict(snap.to_dict())
    assert again == snap and "_opened" not in snap.to_dict()
    assert [d.doc for d in again.documents("people")] == people(10)  # opened from the recorded server
    unpickled = pickle.loads(pickle.dumps(snap))
    assert unpickled == snap and unpickled.repo() is not filled
    assert Pin.from_url(snap.url, repo=filled).bundle == snap.bundle


def test_verify_catches_a_snapshot_of_other_data(filled) -> None:
    snap = pin("main", repo=filled)
    assert snap.verify() is snap
    forged = Pin.from_dict({**snap.to_dict(), "digest": "sha256-v1:" + "0" * 64})
    with pytest.raises(Corrupt):
        forged.verify()
    with pytest.raises(Corrupt):
        Pin.from_url(forged.url, repo=filled)


def test_the_old_name_of_pin_still_works_with_a_warning() -> None:
    import argonfs.ml

    with pytest.warns(DeprecationWarning, match="argonfs.ml.Pin"):
        old = argonfs.ml.Snapshot
    assert old is Pin
    with pytest.raises(AttributeError):
        argonfs.ml.NoSuchThing  # noqa: B018
