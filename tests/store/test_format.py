"""The repository format is read: another format gives one clear line, and
``upgrade`` migrates an older one explicitly."""

from __future__ import annotations

import pytest

from argonfs.errors import WrongFormat
from argonfs.store import Repository
from argonfs.store.engine.migrations import FORMAT


def _set_format(repo: Repository, n: int) -> None:
    repo.db["meta"].update_one({"_id": "repo"}, {"$set": {"format": n}})


def test_an_older_format_is_refused_until_upgraded(repo: Repository, mongo_uri: str, repo_name: str) -> None:
    repo.put("main", "c", {"_id": 1})
    _set_format(repo, 1)
    old = Repository.open(mongo_uri, repo_name)
    for op in (lambda: old.head("main"), lambda: old.get("main", "c", "1"), old.list_branches, old.info):
        with pytest.raises(WrongFormat, match="has format 1, this argonfs uses format 5: run 'argonfs upgrade'"):
            op()
    upgrader = Repository.open(mongo_uri, repo_name, check_format=False, author="admin")
    assert upgrader.upgrade(dry_run=True) == [2, 3, 4, 5]
    assert upgrader.info()["format"] == 1
    assert upgrader.upgrade() == [2, 3, 4, 5]
    assert upgrader.upgrade() == []
    meta = upgrader.info()
    assert meta["format"] == FORMAT and meta["upgrades"][0]["from"] == 1 and meta["upgrades"][0]["author"] == "admin"
    assert Repository.open(mongo_uri, repo_name).get("main", "c", "1").doc == {"_id": 1}


def test_a_newer_format_is_refused_and_not_upgraded(repo: Repository, mongo_uri: str, repo_name: str) -> None:
    _set_format(repo, FORMAT + 1)
    with pytest.raises(WrongFormat, match="newer than this argonfs reads"):
        Repository.open(mongo_uri, repo_name).resolve("main")
    with pytest.raises(WrongFormat, match="newer than this argonfs reads"):
        Repository.open(mongo_uri, repo_name, check_format=False).upgrade()
    assert repo.db["meta"].find_one({"_id": "repo"})["format"] == FORMAT + 1
