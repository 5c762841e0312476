"""The repository facade: one MongoDB database holding branches, bundles, labels and
documents, opened, initialised and described here.

``Repository`` is the one public class of the store.  Its work lives in one module per
noun, each a base class of it:

    views.py      shared state, the format check, refs resolved to views
    refs.py       branches, bundles, labels, branch protection
    documents.py  reading documents and collections
    writes.py     writing them: put, rename, delete, collections, apply
    imports.py    importing many, and the quick check of a re-import
    history.py    log, diff, merge, revert
    readlog.py    the read log of mounts
    remotes.py    the remotes it pushes to and pulls from (name -> URL)

and the values it returns are in model.py (re-exported here).  Every method is blocking
(pymongo); a FUSE daemon calls them from worker threads.  Collections of the database
(docs/formats.md has every field):

    meta          one document describing the repository
    branches      immutable records: id, parent id, fork seq (names live elsewhere)
    branch_names  name -> branch id; deleting a branch deletes only this row
    versions      the version records, see store/engine/versions.py
    catalog       which (branch, collection) pairs have ever been written
    bundles       immutable (branch id, seq) snapshots
    labels        name -> bundle, and label_history, every change ever made
    remotes       name -> URL of the remotes (remote/)
"""

from __future__ import annotations

import contextlib
import copy
import os
from datetime import timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from argonfs.errors import AlreadyExists
from argonfs.store.db.mongo import client, describe, resolve_uri, translating
from argonfs.store.engine import bulk
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import migrations as fmt
from argonfs.store.engine import versions as v
from argonfs.store.repo import gc as gc_
from argonfs.store.repo.imports import Imports
from argonfs.store.repo.merges import Merges
from argonfs.store.repo.model import Branch, Bundle, Change, Document, ImportCounts, LogEntry, MergeResult, View, new_bundle_id, now
from argonfs.store.repo.readlog import ReadLog
from argonfs.store.repo.refs import Refs
from argonfs.store.repo.remotes import Remotes
from argonfs.store.repo.writes import prepare

__all__ = [
    "DEFAULT_BRANCH",
    "FORMAT",
    "Branch",
    "Bundle",
    "Change",
    "Document",
    "ImportCounts",
    "LogEntry",
    "MergeResult",
    "Repository",
    "View",
    "new_bundle_id",
    "now",
    "prepare",
]


FORMAT = fmt.FORMAT
DEFAULT_BRANCH = "main"


class Repository(Refs, Merges, Imports, ReadLog, Remotes):
    """A versioned repository.  Use ``Repository.open(uri, name)``."""

    #: the MongoDB URI it was opened with (``open``), for ``reopen``
    _uri: str | None = None

    def with_author(self, author: str) -> Repository:
        """The same repository (sharing connection and caches) writing as ``author``."""
        other = copy.copy(self)
        other.author = author
        return other

    @classmethod
    def open(cls, uri: str | None = None, name: str | None = None, *, author: str | None = None, check_format: bool = True) -> Repository:
        """Open a repository (no I/O yet).  One of another format is refused with one
        line on first use (store/engine/migrations.py); ``check_format=False`` is for ``upgrade``."""
        from argonfs.config import DEFAULT_REPO

        uri, server = resolve_uri(uri or os.environ.get("ARGONFS_MONGO_URI"))
        name = name or os.environ.get("ARGONFS_REPO") or DEFAULT_REPO
        repo = cls(client(uri)[name], author=author, where=describe(uri), server=server)
        repo._format_checked = not check_format
        repo._uri = uri
        return repo

    def reopen(self) -> Repository:
        """The same repository opened again in this process, with a client of its own:
        what a forked child (a ``DataLoader`` worker) must use instead of its parent's.
        No I/O yet; the author is kept."""
        if self._uri is None:
            raise ValueError("only a repository from Repository.open can be reopened")
        return Repository.open(self._uri, self.db.name, author=self.author, check_format=not self._format_checked)

    def __repr__(self) -> str:
        return f"<argonfs.Repository {self.db.name!r} at {self.where}>"

    @translating
    def init(self) -> bool:
        """Create indexes and the default branch; True if the repository is new.  Idempotent."""
        db = self.db
        v.create_indexes(self._versions)
        cp.create_indexes(db)
        bulk.create_indexes(db)
        db["branch_names"].create_index([("bid", ASCENDING)], name="bid")
        db["catalog"].create_index([("b", ASCENDING), ("c", ASCENDING)], unique=True, name="bc")
        db["label_history"].create_index([("name", ASCENDING), ("t", DESCENDING)], name="name_t")
        db["reads"].create_index([("ref", ASCENDING), ("t", DESCENDING)], name="ref_t")
        db["reads"].create_index([("t", DESCENDING)], name="t")
        try:
            db["meta"].insert_one({"_id": "repo", "format": FORMAT, "default_branch": DEFAULT_BRANCH, "created": now(), "author": self.author})
        except DuplicateKeyError:
            self._check_format()
            return False
        with contextlib.suppress(AlreadyExists):
            self._create_branch(DEFAULT_BRANCH, None, 0)
        return True

    @translating
    def upgrade(self, *, dry_run: bool = False) -> list[int]:
        """Migrate the repository to this argonfs's format (store/engine/migrations.py); return the
        formats it passed through, empty when it was current."""
        return fmt.upgrade(self.db, self.author, dry_run=dry_run)

    @translating
    def gc(self, *, dry_run: bool = False, min_age: timedelta | None = None, grace: timedelta | None = None) -> gc_.Report:
        """Reclaim the payloads of versions no reader can ever see, keeping their slots
        (store/repo/gc.py); returns a ``gc.Report``.  Safe while others read and write."""
        self._check_format()
        return gc_.collect(
            self.db,
            self.author,
            dry_run=dry_run,
            min_age=gc_.DEFAULT_MIN_AGE if min_age is None else min_age,
            grace=gc_.DEFAULT_GRACE if grace is None else grace,
        )

    @translating
    def stats(self) -> dict[str, int]:
        return {
            "branches": self.db["branch_names"].estimated_document_count(),
            "bundles": self.db["bundles"].estimated_document_count(),
            "labels": self.db["labels"].estimated_document_count(),
            "versions": self._versions.estimated_document_count(),
        }

    @translating
    def usage(self) -> dict[str, int]:
        """What the repository occupies: MongoDB's storage size in bytes, and its count
        of version records (what ``statfs`` of a mount reports as used)."""
        stats = self.db.command("dbStats")
        return {"bytes": int(stats.get("storageSize") or stats.get("dataSize") or 0), "objects": self._versions.estimated_document_count()}
