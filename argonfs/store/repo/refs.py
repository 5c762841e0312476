"""Branches, bundles and labels: creating, reading, listing and deleting them, branch
heads, and branch protection (the records and the write guard are in protect.py).

Every branch, bundle and label operation of ``Repository`` is here.  A branch is an
immutable record plus a name row; a bundle records one (branch id, seq); a label names a
bundle, with every change appended to ``label_history``.  Blocking (pymongo).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from argonfs.errors import AlreadyExists, Conflict, NotFound, Protected
from argonfs.naming import check_branch_name, check_bundle_id, check_label_name
from argonfs.store.db.mongo import translating
from argonfs.store.repo import protect
from argonfs.store.repo.model import Branch, Bundle, View, new_bundle_id, now
from argonfs.store.repo.views import Views


class Refs(Views):
    """Branches, bundles and labels of a repository; see ``Repository``."""

    # ------------------------------------------------------------------ branches

    def _create_branch(self, name: str, parent: ObjectId | None, fork: int, parent_name: str | None = None) -> Branch:
        check_branch_name(name)
        rec: dict[str, Any] = {"_id": ObjectId(), "parent": parent, "fork": fork, "name": name, "created": now(), "author": self.author}
        self.db["branches"].insert_one(rec)
        try:
            self.db["branch_names"].insert_one({"_id": name, "bid": rec["_id"]})
        except DuplicateKeyError:
            raise AlreadyExists(f"branch {name!r} already exists") from None
        self._branches[rec["_id"]] = rec
        return self._branch_of(name, rec, parent_name)

    def _branch_of(self, name: str, rec: dict[str, Any], parent_name: str | None = None) -> Branch:
        """``parent_name``: the parent's name as the caller just resolved it (else read)."""
        if rec["parent"] is not None and parent_name is None:
            row = self.db["branch_names"].find_one({"bid": rec["parent"]})
            parent_name = row["_id"] if row else None
        return Branch(name, rec["_id"], rec["parent"], parent_name, rec["fork"], rec["created"], rec["author"])

    @translating
    def create_branch(self, name: str, from_ref: str | None = None, *, empty: bool = False) -> Branch:
        """Fork a branch from a ref (default: the default branch's head).  O(1): it only
        pins the source's current seq and never copies a document.  ``empty``: a branch
        with no parent and nothing in it (what ``pull`` fills)."""
        check_branch_name(name)
        if empty:
            return self._create_branch(name, None, 0)
        source = self.resolve(from_ref or self.default_branch)
        pinned = self._pin(source)
        bid, seq = pinned.chain[0]
        return self._create_branch(name, bid, seq or 0, source.branch if source.kind == "branch" else None)

    @translating
    def stage_branch(self, name: str, from_ref: str | None = None, *, pull: str) -> View:
        """A new branch that no reader can name yet: a branch record without a name row,
        as a writable view (what a pull writes to before its data is verified and its
        bundle frozen).  ``name`` is recorded as the name at creation (what the bundle
        and the log show); ``from_ref`` forks it (default: empty); ``pull`` is the bundle
        it is made for.  ``name_branch`` names it; gc reclaims one that neither got a
        bundle nor a name once it has been idle for its grace period (store/repo/gc.py)."""
        parent, fork = None, 0
        if from_ref is not None:
            bid, seq = self._pin(self.resolve(from_ref)).chain[0]
            parent, fork = bid, seq or 0
        rec: dict[str, Any] = {"_id": ObjectId(), "parent": parent, "fork": fork, "name": name, "created": now(), "author": self.author, "pull": pull}
        self.db["branches"].insert_one(rec)
        self._branches[rec["_id"]] = rec
        return View(name, self._chain(rec["_id"], None), "branch", branch=name)

    @translating
    def name_branch(self, view: View, name: str) -> Branch:
        """Give a staged branch (``stage_branch``) its name: from now on readers see it.
        Conflict for a branch that was not staged or has a name already."""
        check_branch_name(name)
        rec = self._branch_record(view.branch_id)
        if "pull" not in rec or self.db["branch_names"].find_one({"bid": view.branch_id}) is not None:
            raise Conflict(f"cannot name the branch of {view.ref!r} {name!r}: it is not a staged branch without a name")
        try:
            self.db["branch_names"].insert_one({"_id": name, "bid": view.branch_id})
        except DuplicateKeyError:
            raise AlreadyExists(f"branch {name!r} already exists") from None
        return self._branch_of(name, rec)

    @translating
    def branch(self, name: str) -> Branch:
        bid = self._branch_id(name)
        b = self._branch_of(name, self._branch_record(bid))
        return dataclasses.replace(b, protected=self._protection(bid) is not None)

    @translating
    def list_branches(self, *, protection: bool = False) -> list[Branch]:
        """Every branch by name; with ``protection``, each one's protection too (one
        indexed query per branch)."""
        self._check_format()
        rows = list(self.db["branch_names"].find().sort("_id", ASCENDING))
        names = {row["bid"]: row["_id"] for row in rows}
        out = []
        for row in rows:
            rec = self._branch_record(row["bid"])
            protected = self._protection(row["bid"]) is not None if protection else None
            out.append(Branch(row["_id"], rec["_id"], rec["parent"], names.get(rec["parent"]), rec["fork"], rec["created"], rec["author"], protected))
        return out

    @translating
    def delete_branch(self, name: str, *, force: bool = False) -> None:
        """Remove a branch's name.  Its versions stay (bundles may point into them);
        ``deleted_branches`` records who deleted it when (gc waits a grace period)."""
        bid = self._branch_id(name)
        if self._protection(bid) is not None:
            raise Protected(f"branch {name!r} is protected; unprotect it before deleting it")
        if not force:
            if name == self.default_branch:
                raise Conflict(f"{name!r} is the default branch; use --force to delete it anyway")
            children = [r["_id"] for r in self.db["branches"].find({"parent": bid}, {"_id": 1})]
            live = [r["_id"] for r in self.db["branch_names"].find({"bid": {"$in": children}}, {"_id": 1})]
            if live:
                raise Conflict(f"branches fork from {name!r}: {', '.join(sorted(live))}; use --force to delete it anyway")
        self.db["deleted_branches"].update_one({"_id": bid}, {"$setOnInsert": {"name": name, "t": now(), "author": self.author}}, upsert=True)
        self.db["branch_names"].delete_one({"_id": name, "bid": bid})

    @translating
    def head(self, branch: str) -> int:
        return self._head(self._branch_id(branch))

    # ------------------------------------------------------------------ protection

    def _protection(self, bid: ObjectId) -> dict[str, Any] | None:
        rec = protect.newest(self._versions, bid)
        return rec if rec is not None and rec["op"] == protect.PROTECT else None

    @translating
    def protection(self, name: str) -> dict[str, Any] | None:
        """Who protected a branch, when, and at which slot; None when it is not protected."""
        rec = self._protection(self._branch_id(name))
        return None if rec is None else {"branch": name, "seq": rec["s"], "author": rec["a"], "time": rec["t"]}

    @translating
    def protect_branch(self, name: str) -> bool:
        """Refuse direct writes to a branch from now on, in every process; merges into it
        and reverts of it stay allowed.  False if it was protected already."""
        return self._set_protected(name, True)

    @translating
    def unprotect_branch(self, name: str) -> bool:
        """Allow direct writes again.  False if it was not protected."""
        return self._set_protected(name, False)

    def _set_protected(self, name: str, protected: bool) -> bool:
        bid = self._branch_id(name)
        slot = protect.set_protected(self._versions, bid, protected, self.author, now(), self._heads.get(bid))
        if slot is None:
            return False
        self._heads[bid] = slot
        return True

    # ------------------------------------------------------------------ bundles and labels

    @translating
    def create_bundle(
        self, ref: str | View, message: str, *, label: str | None = None, bundle_id: str | None = None, time: datetime | None = None, author: str | None = None
    ) -> Bundle:
        """Freeze a ref's current state.  O(1): it records (branch id, seq).  ``bundle_id``,
        ``time`` and ``author`` keep a pulled bundle's identity (AlreadyExists if taken)."""
        if label is not None:
            check_label_name(label)
        if bundle_id is not None:
            check_bundle_id(bundle_id)
        view = self._pin(self._view(ref))
        bid, seq = view.chain[0]
        rec = {
            "_id": bundle_id or new_bundle_id(),
            "b": bid,
            "s": seq,
            "branch": self._branch_record(bid)["name"],
            "message": message,
            "author": author or self.author,
            "t": time or now(),
        }
        try:
            self.db["bundles"].insert_one(rec)
        except DuplicateKeyError:
            raise AlreadyExists(f"bundle {rec['_id']!r} already exists") from None
        bundle = _bundle_of(rec)
        if label is not None:
            self.set_label(label, bundle.id)
        return bundle

    @translating
    def bundle(self, bundle_id: str) -> Bundle:
        rec = self.db["bundles"].find_one({"_id": bundle_id})
        if rec is None:
            raise NotFound(f"unknown bundle {bundle_id!r}")
        return _bundle_of(rec)

    @translating
    def list_bundles(self, limit: int = 0, *, before: str | None = None) -> list[Bundle]:
        """Bundles newest first (ids sort by creation time); ``before``: only those
        older than that bundle id (the next page after it)."""
        query = {} if before is None else {"_id": {"$lt": before}}
        return [_bundle_of(r) for r in self.db["bundles"].find(query).sort("_id", DESCENDING).limit(limit)]

    @translating
    def set_label(self, name: str, bundle_id: str) -> None:
        check_label_name(name)
        self.bundle(bundle_id)
        t = now()
        self.db["labels"].replace_one({"_id": name}, {"_id": name, "bundle": bundle_id, "t": t, "author": self.author}, upsert=True)
        self.db["label_history"].insert_one({"name": name, "op": "set", "bundle": bundle_id, "t": t, "author": self.author})

    @translating
    def delete_label(self, name: str) -> None:
        if self.db["labels"].delete_one({"_id": name}).deleted_count == 0:
            raise NotFound(f"unknown label {name!r}")
        self.db["label_history"].insert_one({"name": name, "op": "delete", "bundle": None, "t": now(), "author": self.author})

    @translating
    def label(self, name: str) -> dict[str, Any]:
        row = self.db["labels"].find_one({"_id": name})
        if row is None:
            raise NotFound(f"unknown label {name!r}")
        return {"name": row["_id"], "bundle": row["bundle"], "time": row["t"], "author": row["author"]}

    @translating
    def list_labels(self) -> list[dict[str, Any]]:
        return [{"name": r["_id"], "bundle": r["bundle"], "time": r["t"], "author": r["author"]} for r in self.db["labels"].find().sort("_id", ASCENDING)]

    @translating
    def label_history(self, name: str) -> list[dict[str, Any]]:
        rows = list(self.db["label_history"].find({"name": name}).sort([("t", DESCENDING), ("_id", DESCENDING)]))
        if not rows:
            raise NotFound(f"label {name!r} has no history")
        return [{"name": r["name"], "op": r["op"], "bundle": r["bundle"], "time": r["t"], "author": r["author"]} for r in rows]


def _bundle_of(rec: dict[str, Any]) -> Bundle:
    return Bundle(rec["_id"], rec["b"], rec.get("branch", ""), rec["s"], rec["message"], rec["author"], rec["t"])
