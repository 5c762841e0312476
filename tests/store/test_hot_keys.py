"""A document rewritten many times: its lookups read only the slots above what the
process already knows of it (reading._Known), and still see every new version, from
this process or another, and a transaction's version exactly from its commit on."""

from __future__ import annotations

from typing import Any

from argonfs.store import Repository
from argonfs.store.engine import lookup
from argonfs.store.repo.model import Change


class Counting:
    """A versions collection that counts the records its finds return."""

    def __init__(self, coll: Any) -> None:
        self.coll = coll
        self.returned = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.coll, name)

    def find(self, *args: Any, **kwargs: Any) -> Any:
        for rec in self.coll.find(*args, **kwargs):
            self.returned += 1
            yield rec


def _lookup(repo: Repository, versions: Any, ref: str, stem: str) -> dict[str, Any] | None:
    return lookup.lookup_many(versions, repo.pin(ref).chain, "c", [stem]).get(stem)


def test_a_hot_document_costs_its_new_versions_only(repo: Repository, mongo_uri: str) -> None:
    for i in range(lookup.HOT * 3):
        repo.put("main", "c", {"_id": "hot", "i": i})
    versions = Counting(repo.db["versions"])
    assert _lookup(repo, versions, "main", "hot")["d"]["i"] == lookup.HOT * 3 - 1
    first = versions.returned
    assert first >= lookup.HOT * 3  # the first lookup reads the document's whole history
    other = Repository.open(mongo_uri, repo.db.name, author="other")  # another writer
    for i in range(3):
        other.put("main", "c", {"_id": "hot", "i": 1000 + i})
        before = versions.returned
        assert _lookup(repo, versions, "main", "hot")["d"]["i"] == 1000 + i
        assert versions.returned - before <= 2  # the new version (and nothing older)
    repo.delete("main", "c", "hot")
    assert _lookup(repo, versions, "main", "hot") is None
    assert _lookup(repo, versions, f"main@{lookup.HOT}", "hot")["d"]["i"] == lookup.HOT - 1  # an older view reads as before


def test_a_transaction_on_a_hot_document_shows_from_its_commit(repo: Repository) -> None:
    for i in range(lookup.HOT + 1):
        repo.put("main", "c", {"_id": "hot", "i": i})
    versions = repo.db["versions"]
    head = repo.head("main")
    assert _lookup(repo, versions, "main", "hot")["d"]["i"] == lookup.HOT

    def changes() -> Any:
        yield Change("put", "c", "hot", {"_id": "hot", "i": "txn"})
        # the process looks the document up while the transaction's version is in, uncommitted
        assert _lookup(repo, versions, "main", "hot")["d"]["i"] == lookup.HOT
        assert _lookup(repo, versions, f"main@{head + 1}", "hot")["d"]["i"] == lookup.HOT

    slot = repo.apply("main", changes(), kind="test", batch_size=1)
    assert slot is not None
    assert _lookup(repo, versions, f"main@{slot - 1}", "hot")["d"]["i"] == lookup.HOT
    assert _lookup(repo, versions, "main", "hot")["d"]["i"] == "txn"
    assert _lookup(repo, versions, f"main@{slot}", "hot")["d"]["i"] == "txn"
