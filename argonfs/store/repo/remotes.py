"""The remotes a repository knows: name -> URL, kept in the repository (the ``remotes``
collection) so the daemon and every CLI see the same ones.  No credentials are stored:
each backend uses its client's standard credential chain.  Blocking (pymongo).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from argonfs.errors import AlreadyExists, InvalidName, NotFound
from argonfs.naming import check_label_name
from argonfs.store.db.mongo import translating
from argonfs.store.repo.model import now
from argonfs.store.repo.views import Views


class Remotes(Views):
    """Adding, listing and removing remotes; see ``Repository``."""

    @translating
    def add_remote(self, name: str, url: str) -> None:
        try:
            check_label_name(name)
        except InvalidName as exc:
            raise InvalidName(str(exc).replace("label", "remote", 1)) from None
        if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            raise InvalidName(f"remote URL {url!r} carries credentials; argonfs stores none (use the client's credential chain)")
        try:
            self.db["remotes"].insert_one({"_id": name, "url": url, "t": now(), "author": self.author})
        except DuplicateKeyError:
            raise AlreadyExists(f"remote {name!r} already exists") from None

    @translating
    def remove_remote(self, name: str) -> None:
        if self.db["remotes"].delete_one({"_id": name}).deleted_count == 0:
            raise NotFound(f"unknown remote {name!r}")

    @translating
    def remote(self, name: str) -> str:
        """The URL of remote ``name``."""
        row = self.db["remotes"].find_one({"_id": name})
        if row is None:
            raise NotFound(f"unknown remote {name!r} (see 'argonfs remote list')")
        url: str = row["url"]
        return url

    @translating
    def list_remotes(self) -> list[dict[str, Any]]:
        return [{"name": r["_id"], "url": r["url"], "time": r["t"], "author": r["author"]} for r in self.db["remotes"].find().sort("_id", ASCENDING)]
