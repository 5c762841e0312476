"""The repository facade: branches, bundles, labels and documents in one MongoDB database.

Every method is blocking (pymongo).  A FUSE daemon calls them from worker threads.
Collections of the database (docs/formats.md has every field):

    meta          one document describing the repository
    branches      immutable records: id, parent id, fork seq (names live elsewhere)
    branch_names  name -> branch id; deleting a branch deletes only this row
    versions      the version records, see store/versions.py
    catalog       which (branch, collection) pairs have ever been written
    bundles       immutable (branch id, seq) snapshots
    labels        name -> bundle, and label_history, every change ever made
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from argonfs import codec
from argonfs.errors import AlreadyExists, Conflict, InvalidDocument, InvalidName, NotFound, Protected, ReadOnly
from argonfs.store import diff as d
from argonfs.store import format as fmt
from argonfs.store import merge as m
from argonfs.store import protect
from argonfs.store import versions as v
from argonfs.store.mongo import client, describe, resolve_uri, translating, translating_iter
from argonfs.store.names import (
    check_branch_name,
    check_collection_name,
    check_label_name,
    parse_ref,
)

if TYPE_CHECKING:
    from argonfs.store import gc as gc_

log = logging.getLogger(__name__)

FORMAT = fmt.FORMAT
DEFAULT_BRANCH = "main"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def now() -> datetime:
    """Wall-clock time at MongoDB's millisecond precision."""
    t = datetime.now(timezone.utc).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_bundle_id() -> str:
    """14 characters: 9 of Crockford base32 milliseconds, then 5 random; sorts by time."""
    ms = int(time.time() * 1000)
    head = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(9)))
    return head + "".join(secrets.choice(_CROCKFORD) for _ in range(5))


@dataclass(frozen=True)
class Branch:
    name: str
    id: ObjectId
    parent: ObjectId | None
    parent_name: str | None
    fork_seq: int
    created: datetime
    author: str
    #: whether direct writes are refused; None when not looked up (see list_branches)
    protected: bool | None = None


@dataclass(frozen=True)
class Bundle:
    id: str
    branch_id: ObjectId
    branch: str
    seq: int
    message: str
    author: str
    time: datetime


@dataclass(frozen=True)
class View:
    """A resolved ref: the layers to read, and whether (and where) writes go."""

    ref: str
    chain: tuple[v.Layer, ...]
    kind: str  # "branch", "seq", "bundle" or "label"
    branch: str | None = None
    bundle: str | None = None

    @property
    def writable(self) -> bool:
        return self.kind == "branch"

    @property
    def branch_id(self) -> ObjectId:
        return self.chain[0][0]

    @property
    def seq(self) -> int | None:
        return self.chain[0][1]


@dataclass(frozen=True)
class Document:
    collection: str
    stem: str
    doc: dict[str, Any]
    seq: int
    size: int
    hash: str
    time: datetime
    author: str
    #: an explicitly set modification time (ns since the epoch), see versions.Entry
    mtime: int | None = None

    @property
    def rendered(self) -> bytes:
        return codec.render(self.doc)


@dataclass(frozen=True)
class LogEntry:
    """One version: which branch and slot, when, who, what (``put``, ``del``, or a
    collection marker ``drop``/``mkcol`` with no ``stem``), and the document's size."""

    branch: str
    seq: int
    time: datetime
    author: str
    op: str
    collection: str
    stem: str | None
    size: int | None
    #: the merge or revert (transaction id, and which of the two) that wrote it, if any
    txn: str | None = None
    txn_kind: str | None = None


@dataclass
class MergeResult:
    source: str
    target: str
    base: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    dropped: list[str] = field(default_factory=list)
    #: (collection, document stem or None for the collection, conflict)
    conflicts: list[tuple[str, str | None, Any]] = field(default_factory=list)
    #: the target's seq of the merge's last version; None when nothing was written
    seq: int | None = None

    @property
    def changes(self) -> int:
        return self.added + self.updated + self.deleted + len(self.dropped)


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


class Repository:
    """A versioned repository.  Use ``Repository.open(uri, name)``."""

    def __init__(self, db: Database, *, author: str | None = None, where: str = "MongoDB", server: str = "") -> None:
        from argonfs.config import default_author

        self.db = db
        self.where = where
        self.server = server
        self.author = author or default_author()
        self._versions = db["versions"]
        self._branches: dict[ObjectId, dict[str, Any]] = {}
        self._catalogued: set[tuple[ObjectId, str]] = set()
        self._populated: set[tuple[Any, ...]] = set()  # see versions.exists
        self._heads: dict[ObjectId, int] = {}
        self._format_checked = True  # Repository.open checks, on first use

    def with_author(self, author: str) -> Repository:
        """The same repository (sharing connection and caches) writing as ``author``."""
        other = copy.copy(self)
        other.author = author
        return other

    @classmethod
    def open(cls, uri: str | None = None, name: str | None = None, *, author: str | None = None, check_format: bool = True) -> Repository:
        """Open a repository (no I/O yet).  One of another format is refused with one
        line on first use (store/format.py); ``check_format=False`` is for ``upgrade``."""
        from argonfs.config import DEFAULT_REPO

        uri, server = resolve_uri(uri or os.environ.get("ARGONFS_MONGO_URI"))
        name = name or os.environ.get("ARGONFS_REPO") or DEFAULT_REPO
        repo = cls(client(uri)[name], author=author, where=describe(uri), server=server)
        repo._format_checked = not check_format
        return repo

    def _check_format(self) -> None:
        """Refuse a repository of another format; asked once, on first use (opening
        does no I/O)."""
        if not self._format_checked:
            fmt.check(self.db)
            self._format_checked = True

    # ------------------------------------------------------------------ repository

    @translating
    def init(self) -> bool:
        """Create indexes and the default branch; True if the repository is new.  Idempotent."""
        db = self.db
        v.create_indexes(self._versions)
        db["branch_names"].create_index([("bid", ASCENDING)], name="bid")
        db["catalog"].create_index([("b", ASCENDING), ("c", ASCENDING)], unique=True, name="bc")
        db["label_history"].create_index([("name", ASCENDING), ("t", DESCENDING)], name="name_t")
        db["reads"].create_index([("ref", ASCENDING), ("t", DESCENDING)], name="ref_t")
        db["reads"].create_index([("t", DESCENDING)], name="t")
        try:
            db["meta"].insert_one(
                {"_id": "repo", "format": FORMAT, "default_branch": DEFAULT_BRANCH, "created": now(), "author": self.author}
            )
        except DuplicateKeyError:
            self._check_format()
            return False
        try:
            self._create_branch(DEFAULT_BRANCH, None, 0)
        except AlreadyExists:
            pass
        return True

    @translating
    def upgrade(self, *, dry_run: bool = False) -> list[int]:
        """Migrate the repository to this argonfs's format (store/format.py); return the
        formats it passed through, empty when it was current."""
        return fmt.upgrade(self.db, self.author, dry_run=dry_run)

    @translating
    def gc(self, *, dry_run: bool = False, min_age: timedelta | None = None, grace: timedelta | None = None) -> gc_.Report:
        """Reclaim the payloads of versions no reader can ever see, keeping their slots
        (store/gc.py); returns a ``gc.Report``.  Safe while others read and write."""
        from argonfs.store import gc

        self._check_format()
        return gc.collect(self, dry_run=dry_run, min_age=gc.DEFAULT_MIN_AGE if min_age is None else min_age, grace=gc.DEFAULT_GRACE if grace is None else grace)

    @translating
    def info(self) -> dict[str, Any]:
        self._check_format()
        meta = self.db["meta"].find_one({"_id": "repo"})
        if meta is None:
            raise NotFound(f"no argonfs repository named {self.db.name!r} at {self.where}; run 'argonfs init'")
        return meta

    @property
    def default_branch(self) -> str:
        return self.info()["default_branch"]

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

    # ------------------------------------------------------------------ branches

    def _branch_record(self, bid: ObjectId) -> dict[str, Any]:
        rec = self._branches.get(bid)
        if rec is None:
            rec = self.db["branches"].find_one({"_id": bid})
            if rec is None:
                raise NotFound(f"branch id {bid} is missing from the repository")
            self._branches[bid] = rec  # branch records never change
        return rec

    def _branch_id(self, name: str) -> ObjectId:
        self._check_format()
        row = self.db["branch_names"].find_one({"_id": name})
        if row is None:
            self.info()  # a clearer error when the repository itself is missing
            raise NotFound(f"unknown branch {name!r}")
        return row["bid"]

    def _chain(self, bid: ObjectId, seq: int | None) -> tuple[v.Layer, ...]:
        chain: list[v.Layer] = [(bid, seq)]
        rec = self._branch_record(bid)
        while rec["parent"] is not None:
            chain.append((rec["parent"], rec["fork"]))
            rec = self._branch_record(rec["parent"])
        return tuple(chain)

    def _create_branch(self, name: str, parent: ObjectId | None, fork: int) -> Branch:
        check_branch_name(name)
        rec = {"_id": ObjectId(), "parent": parent, "fork": fork, "name": name, "created": now(), "author": self.author}
        self.db["branches"].insert_one(rec)
        try:
            self.db["branch_names"].insert_one({"_id": name, "bid": rec["_id"]})
        except DuplicateKeyError:
            raise AlreadyExists(f"branch {name!r} already exists") from None
        self._branches[rec["_id"]] = rec
        return self._branch_of(name, rec)

    def _branch_of(self, name: str, rec: dict[str, Any]) -> Branch:
        parent_name = None
        if rec["parent"] is not None:
            row = self.db["branch_names"].find_one({"bid": rec["parent"]})
            parent_name = row["_id"] if row else None
        return Branch(name, rec["_id"], rec["parent"], parent_name, rec["fork"], rec["created"], rec["author"])

    @translating
    def create_branch(self, name: str, from_ref: str | None = None) -> Branch:
        """Fork a branch from a ref (default: the default branch's head).  O(1): it only
        pins the source's current seq and never copies a document."""
        check_branch_name(name)
        source = self.resolve(from_ref or self.default_branch)
        pinned = self._pin(source)
        bid, seq = pinned.chain[0]
        return self._create_branch(name, bid, seq or 0)

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
            out.append(
                Branch(row["_id"], rec["_id"], rec["parent"], names.get(rec["parent"]), rec["fork"], rec["created"], rec["author"], protected)
            )
        return out

    def _protection(self, bid: ObjectId) -> dict[str, Any] | None:
        rec = protect.newest(self._versions, bid)
        return rec if rec is not None and rec["op"] == protect.PROTECT else None

    @translating
    def protection(self, name: str) -> dict[str, Any] | None:
        """Who protected a branch, when, and at which slot; None when it is not protected."""
        rec = self._protection(self._branch_id(name))
        return None if rec is None else {"branch": name, "seq": rec["s"], "author": rec["a"], "time": rec["t"]}

    @translating
    def check_writable(self, ref: str | View, seq: int | None = None) -> None:
        """Raise ``Protected`` (or ``ReadOnly``) if a direct write to ``ref`` would be
        refused as of slot ``seq`` (default: the head), so a front end can refuse early,
        e.g. the mount at ``open()``.  The write itself is checked again when it lands."""
        view = self._writable(ref)
        protect.Guard(self._versions, view.branch_id, view.branch)(self._head(view.branch_id) if seq is None else seq)

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

    def _head(self, bid: ObjectId) -> int:
        seq = v.head(self._versions, bid, self._heads.get(bid, 0))
        self._heads[bid] = seq
        return seq

    # ------------------------------------------------------------------ refs

    @translating
    def resolve(self, ref: str) -> View:
        """Resolve a branch, ``branch@SEQ``, a bundle id or a label (tried in that order)."""
        self._check_format()
        spec = parse_ref(ref)
        if spec.time is not None:
            bid = self._branch_id(spec.name)
            if spec.time < self._branch_record(bid)["created"]:
                raise NotFound(f"branch {spec.name!r} did not exist yet at {spec.time.isoformat()}Z")
            seq = v.seq_at(self._versions, bid, self._head(bid), spec.time)
            return View(ref, self._chain(bid, seq), "seq", branch=spec.name)
        if spec.seq is not None:
            bid = self._branch_id(spec.name)
            top = self._head(bid)
            if spec.seq > top:
                raise NotFound(f"branch {spec.name!r} has no version {spec.seq} (its newest is {top})")
            return View(ref, self._chain(bid, spec.seq), "seq", branch=spec.name)
        row = self.db["branch_names"].find_one({"_id": ref})
        if row is not None:
            return View(ref, self._chain(row["bid"], None), "branch", branch=ref)
        bundle = self.db["bundles"].find_one({"_id": ref})
        if bundle is not None:
            return View(ref, self._chain(bundle["b"], bundle["s"]), "bundle", bundle=ref)
        label = self.db["labels"].find_one({"_id": ref})
        if label is not None:
            bundle = self.db["bundles"].find_one({"_id": label["bundle"]})
            if bundle is not None:
                return View(ref, self._chain(bundle["b"], bundle["s"]), "label", bundle=label["bundle"])
        self.info()
        raise NotFound(f"unknown ref {ref!r}: no branch, bundle or label has that name")

    def _pin(self, view: View) -> View:
        """The same view with a live branch head replaced by its current seq."""
        if view.seq is not None:
            return view
        seq = self._head(view.branch_id)
        return View(view.ref, ((view.branch_id, seq), *view.chain[1:]), view.kind, view.branch, view.bundle)

    @translating
    def pin(self, ref: str | View) -> View:
        return self._pin(self.resolve(ref) if isinstance(ref, str) else ref)

    def _writable(self, ref: str | View) -> View:
        view = self.resolve(ref) if isinstance(ref, str) else ref
        if not view.writable:
            raise ReadOnly(f"{view.ref!r} is a read-only {view.kind}; write to a branch")
        return view

    # ------------------------------------------------------------------ bundles and labels

    @translating
    def create_bundle(self, ref: str, message: str, *, label: str | None = None) -> Bundle:
        """Freeze a ref's current state.  O(1): it records (branch id, seq)."""
        if label is not None:
            check_label_name(label)
        view = self._pin(self.resolve(ref))
        bid, seq = view.chain[0]
        rec = {"_id": new_bundle_id(), "b": bid, "s": seq, "branch": self._branch_record(bid)["name"], "message": message, "author": self.author, "t": now()}
        self.db["bundles"].insert_one(rec)
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
    def list_bundles(self, limit: int = 0) -> list[Bundle]:
        return [_bundle_of(r) for r in self.db["bundles"].find().sort("_id", DESCENDING).limit(limit)]

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
        return [
            {"name": r["_id"], "bundle": r["bundle"], "time": r["t"], "author": r["author"]}
            for r in self.db["labels"].find().sort("_id", ASCENDING)
        ]

    @translating
    def label_history(self, name: str) -> list[dict[str, Any]]:
        rows = list(self.db["label_history"].find({"name": name}).sort([("t", DESCENDING), ("_id", DESCENDING)]))
        if not rows:
            raise NotFound(f"label {name!r} has no history")
        return [{"name": r["name"], "op": r["op"], "bundle": r["bundle"], "time": r["t"], "author": r["author"]} for r in rows]

    # ------------------------------------------------------------------ reading

    @translating
    def get(self, ref: str | View, collection: str, stem: str) -> Document:
        view = self.resolve(ref) if isinstance(ref, str) else ref
        rec = v.lookup_many(self._versions, view.chain, collection, [stem]).get(stem)
        if rec is None:
            raise NotFound(f"no document {stem + codec.SUFFIX!r} in {view.ref}/{collection}")
        return Document(collection, stem, _payload(rec), rec["s"], rec["z"], rec["h"], rec["t"], rec["a"])

    @translating
    def get_id(self, ref: str | View, collection: str, doc_id: Any) -> Document:
        return self.get(ref, collection, codec.id_to_stem(doc_id))

    @translating_iter
    def log(self, ref: str | View, collection: str | None = None, stem: str | None = None) -> Iterator[LogEntry]:
        """Versions newest first: the ref's own branch from its seq down, then each
        ancestor from its fork point down.  Unfiltered, each batch is read by slot id,
        so the first page costs the same whatever the length of the history; with a
        collection (and a document) it is an index scan of that collection per layer."""
        view = self._pin(self.resolve(ref) if isinstance(ref, str) else ref)
        if stem is not None and collection is None:
            raise InvalidName("a document filter needs a collection")
        for bid, limit in view.chain:
            name = self._branch_record(bid)["name"]
            if collection is None:
                records: Iterable[dict[str, Any]] = v.slots_desc(self._versions, bid, limit or 0)
            else:
                records = v.key_history(self._versions, bid, limit, collection, stem)
            for rec in records:
                if rec["op"] == v.COMMIT:  # the end of a merge or revert: it names the operation
                    yield LogEntry(name, rec["s"], rec["t"], rec["a"], rec.get("kind", v.COMMIT), "", None, None, rec["k"], rec.get("kind"))
                elif rec["c"] == v.COMMITS:  # protect, unprotect, or gc's abort of a transaction
                    txn = rec["k"] if rec["op"] == v.ABORT else None
                    yield LogEntry(name, rec["s"], rec["t"], rec["a"], rec["op"], "", None, None, txn, None)
                else:
                    yield LogEntry(name, rec["s"], rec["t"], rec["a"], rec["op"], rec["c"], rec["k"] or None, rec.get("z"), rec.get("x"), rec.get("xk"))

    @translating
    def diff(self, old: str | View, new: str | View, collection: str | None = None, *, fields: bool = True) -> list[d.DocChange]:
        """Documents added, removed and modified from ``old`` to ``new``, by collection
        and name; for modified ones (with ``fields``) the JSON paths that changed.

        When the two share history, only keys written since their common point are
        compared (see store/diff.py); otherwise every collection is listed on both sides."""
        a = self._pin(self.resolve(old) if isinstance(old, str) else old)
        b = self._pin(self.resolve(new) if isinstance(new, str) else new)
        found = d.changed_keys(self._versions, a.chain, b.chain, collection)
        if found is None:
            names = {collection} if collection else set(self.collections(a)) | set(self.collections(b))
            keys: dict[str, set[str]] = {}
            whole = names
        else:
            keys, whole = found
        changes: list[d.DocChange] = []
        for c in sorted(set(keys) | whole):
            if c in whole:
                changes += self._diff_listings(a, b, c)
            else:
                changes += self._diff_keys(a, b, c, sorted(keys[c]))
        if fields:
            self._field_changes([ch for ch in changes if ch.change == d.MODIFIED], a, b)
        return changes

    def _diff_keys(self, a: View, b: View, collection: str, stems: list[str]) -> list[d.DocChange]:
        out = []
        for start in range(0, len(stems), v.PAGE):
            chunk = stems[start : start + v.PAGE]
            ra = v.lookup_many(self._versions, a.chain, collection, chunk, bodies=False)
            rb = v.lookup_many(self._versions, b.chain, collection, chunk, bodies=False)
            for stem in chunk:
                change = _compare(ra.get(stem), rb.get(stem))
                if change:
                    out.append(d.DocChange(collection, stem, change))
        return out

    def _diff_listings(self, a: View, b: View, collection: str) -> list[d.DocChange]:
        """Merge-join both listings by name; hashes say whether bodies differ."""
        def listing(view: View) -> Iterator[v.Entry]:
            try:
                yield from self.entries(view, collection)
            except NotFound:
                return

        out = []
        left, right = listing(a), listing(b)
        ea, eb = next(left, None), next(right, None)
        while ea is not None or eb is not None:
            if eb is None or (ea is not None and ea.stem < eb.stem):
                out.append(d.DocChange(collection, ea.stem, d.REMOVED))  # type: ignore[union-attr]
                ea = next(left, None)
            elif ea is None or eb.stem < ea.stem:
                out.append(d.DocChange(collection, eb.stem, d.ADDED))
                eb = next(right, None)
            else:
                if ea.hash != eb.hash:
                    out.append(d.DocChange(collection, ea.stem, d.MODIFIED))
                ea, eb = next(left, None), next(right, None)
        return out

    def _field_changes(self, changes: list[d.DocChange], a: View, b: View) -> None:
        for c, chunk in d.chunks_by_collection(changes, v.PAGE):
            stems = [ch.stem for ch in chunk]
            old = v.lookup_many(self._versions, a.chain, c, stems)
            new = v.lookup_many(self._versions, b.chain, c, stems)
            for ch in chunk:
                ch.fields = d.field_diff(old[ch.stem]["d"], new[ch.stem]["d"])

    @translating
    def merge(self, source: str, target: str, *, strategy: str = "fail", dry_run: bool = False, message: str = "") -> MergeResult:
        """Three-way merge of ``source`` into the branch ``target``.

        The base is the newest of: the two refs' common fork point, and the source side of
        the latest earlier merge between the two branches (either direction), so merging
        twice only brings what is new.  Each document changed on either side since the
        base is merged field by field (store/merge.py); a collection dropped on one side
        and changed on the other is a conflict.  ``strategy``: ``fail`` (nothing changes
        if there is any conflict), ``ours`` or ``theirs`` (conflicts resolved to that
        side).  The writes are applied atomically (versions.append_atomic) and recorded in
        ``merges``."""
        if strategy not in ("fail", "ours", "theirs"):
            raise InvalidName(f"unknown merge strategy {strategy!r}: use fail, ours or theirs")
        src = self._pin(self.resolve(source))
        tgt_view = self._writable(target)
        tgt = self._pin(tgt_view)
        base = self._merge_base(src, tgt)
        result = MergeResult(source, target, base.ref)
        records: list[dict[str, Any]] = []
        for collection, stems, whole in self._merge_candidates(base, src, tgt):
            dropped = self._merge_collection_drop(base, src, tgt, collection, whole, result, records)
            if dropped:
                continue
            for start in range(0, len(stems), v.PAGE):
                chunk = stems[start : start + v.PAGE]
                sides = [v.lookup_many(self._versions, view.chain, collection, chunk) for view in (base, tgt, src)]
                for stem in chunk:
                    b, o, t = (side[stem]["d"] if stem in side else None for side in sides)
                    merged, conflicts = m.merge_document(b, o, t)
                    if conflicts:
                        result.conflicts += [(collection, stem, c) for c in conflicts]
                        if strategy == "theirs":
                            merged, _ = m.merge_document(b, t, o)
                    if _same_doc(merged, o):
                        continue
                    if merged is None:
                        records.append(self._record(v.DELETE, collection, stem))
                        result.deleted += 1
                    else:
                        records.append(self._record(v.PUT, collection, stem, merged))
                        result.updated += o is not None
                        result.added += o is None
        if result.conflicts and strategy == "fail":
            return result
        if dry_run or not records:
            return result
        if self._head(tgt.branch_id) != tgt.seq:
            raise Conflict(f"{target!r} changed while the merge was computed; run it again")
        for rec in records:
            if rec["k"]:
                self._catalog(tgt.branch_id, rec["c"])
        txn = new_bundle_id()
        commit = {"kind": "merge", "source": source, "sb": src.branch_id, "ss": src.seq, "t": now(), "a": self.author, "message": message}
        last = v.append_atomic(self._versions, tgt.branch_id, records, tgt.seq, txn, commit)
        self._heads[tgt.branch_id] = last
        self.db["merges"].insert_one({"_id": txn, "sb": src.branch_id, "ss": src.seq, "tb": tgt.branch_id, "ts": last, "t": commit["t"], "a": self.author, "message": message})
        result.seq = last
        return result

    @translating
    def revert(self, branch: str, to: str, *, message: str = "") -> MergeResult:
        """Write new versions to ``branch`` that make it equal to an earlier state; the
        history is kept.  ``to``: a seq or an ISO time of the branch, or any ref (a
        bundle, a label, ``other@SEQ``).  Applied atomically, like a merge."""
        view = self._writable(branch)
        current = self._pin(view)
        ref = f"{branch}@{to}" if to.isdigit() or _is_time(to) else to
        old = self._pin(self.resolve(ref))
        result = MergeResult(ref, branch, ref)
        records: list[dict[str, Any]] = []
        now_colls, old_colls = set(self.collections(current)), set(self.collections(old))
        for c in sorted(now_colls - old_colls):
            records.append(self._record(v.DROP, c, v.MARKER_KEY))
            result.dropped.append(c)
        for c in sorted(old_colls - now_colls):
            if next(iter(self.entries(old, c)), None) is None:
                records.append(self._record(v.MKCOL, c, v.MARKER_KEY))
        changes = [ch for ch in self.diff(current, old, fields=False) if ch.collection not in result.dropped]
        for c, chunk in d.chunks_by_collection(changes, v.PAGE):
            bodies = v.lookup_many(self._versions, old.chain, c, [ch.stem for ch in chunk if ch.change != d.REMOVED])
            for ch in chunk:
                if ch.change == d.REMOVED:
                    records.append(self._record(v.DELETE, c, ch.stem))
                    result.deleted += 1
                else:
                    records.append(self._record(v.PUT, c, ch.stem, bodies[ch.stem]["d"]))
                    result.added += ch.change == d.ADDED
                    result.updated += ch.change == d.MODIFIED
        if not records:
            return result
        for rec in records:
            self._catalog(current.branch_id, rec["c"])
        commit = {"kind": "revert", "to": ref, "t": now(), "a": self.author, "message": message}
        last = v.append_atomic(self._versions, current.branch_id, records, current.seq, new_bundle_id(), commit)
        self._heads[current.branch_id] = last
        result.seq = last
        return result

    def _merge_base(self, src: View, tgt: View) -> View:
        rows = list(self.db["merges"].find({"$or": [{"sb": src.branch_id, "tb": tgt.branch_id}, {"sb": tgt.branch_id, "tb": src.branch_id}]}).sort("t", DESCENDING).limit(1))
        if rows:
            row = rows[0]
            if row["sb"] == src.branch_id:  # merged from the source before: everything up to ss is in
                seq = min(row["ss"], src.seq or 0)
                return View(f"{self._branch_record(row['sb'])['name']}@{seq}", self._chain(row["sb"], seq), "seq")
            # merged the other way: the target's side of that merge is an ancestor of both
            return View(f"{self._branch_record(row['sb'])['name']}@{row['ss']}", self._chain(row["sb"], row["ss"]), "seq")
        shared = d.shared_point(src.chain, tgt.chain)
        if shared is None:
            raise Conflict("the two refs share no history")
        i, _j, seq = shared
        bid = src.chain[i][0]
        return View(f"{self._branch_record(bid)['name']}@{seq}", ((bid, seq), *src.chain[i + 1 :]), "seq")

    def _merge_candidates(self, base: View, src: View, tgt: View) -> Iterator[tuple[str, list[str], bool]]:
        keys: dict[str, set[str]] = {}
        whole: set[str] = set()
        for side in (src, tgt):
            found = d.changed_keys(self._versions, base.chain, side.chain, None)
            if found is None:
                raise Conflict("the two refs share no history")
            for c, ks in found[0].items():
                keys.setdefault(c, set()).update(ks)
            whole |= found[1]
        for c in sorted(set(keys) | whole):
            stems = set(keys.get(c, ()))
            if c in whole:  # a collection marker: every document is a candidate
                for view in (base, src, tgt):
                    try:
                        stems.update(e.stem for e in self.entries(view, c))
                    except NotFound:
                        pass
            yield c, sorted(stems), c in whole

    def _merge_collection_drop(self, base: View, src: View, tgt: View, collection: str, whole: bool, result: MergeResult, records: list[dict[str, Any]]) -> bool:
        """A collection dropped on one side: applied if the other side did not change it,
        a conflict if it did.  True when the collection is settled at that level."""
        if not whole:
            return False
        exists = [self._collection_exists(view, collection) for view in (base, tgt, src)]
        in_base, in_tgt, in_src = exists
        if not in_base or (in_tgt and in_src):
            return False
        changed_src = bool(self.diff(base, src, collection, fields=False))
        changed_tgt = bool(self.diff(base, tgt, collection, fields=False))
        if in_tgt and not in_src:  # the source dropped it
            if changed_tgt:
                result.conflicts.append((collection, None, m.MergeConflict(m.DROP_MODIFY, collection, None, "modified", "dropped")))
            else:
                records.append(self._record(v.DROP, collection, v.MARKER_KEY))
                result.dropped.append(collection)
            return True
        if in_src and not in_tgt and changed_src:  # the target dropped what the source changed
            result.conflicts.append((collection, None, m.MergeConflict(m.DROP_MODIFY, collection, None, "dropped", "modified")))
        return True

    @translating
    def record_reads(self, reads: list[dict[str, Any]]) -> None:
        """Store a batch of read-log entries: ``{user, ref, c, k, t}`` each."""
        if reads:
            self.db["reads"].insert_many(reads, ordered=False)

    @translating
    def read_log(self, ref: str | None = None, *, since: datetime | None = None, limit: int = 0) -> list[dict[str, Any]]:
        """Who read which document when (from mounts started with --read-log), newest first."""
        q: dict[str, Any] = {}
        if ref is not None:
            q["ref"] = ref
        if since is not None:
            q["t"] = {"$gte": since}
        rows = self.db["reads"].find(q, {"_id": 0}).sort("t", DESCENDING).limit(limit)
        return [{"time": r["t"], "user": r["user"], "ref": r["ref"], "collection": r["c"], "id": r["k"]} for r in rows]

    @translating
    def stat(self, ref: str | View, collection: str, stem: str) -> v.Entry:
        """What a listing knows of one document (size, hash, slot), without its body."""
        view = self.resolve(ref) if isinstance(ref, str) else ref
        rec = v.lookup_many(self._versions, view.chain, collection, [stem], bodies=False).get(stem)
        if rec is None:
            raise NotFound(f"no document {stem + codec.SUFFIX!r} in {view.ref}/{collection}")
        return v.entry_of(rec)

    @translating_iter
    def entries(self, ref: str | View, collection: str, *, after: str = "") -> Iterator[v.Entry]:
        """Live documents of a collection in name order, without bodies, streamed in pages.
        The snapshot is pinned when iteration starts."""
        view = self._pin(self.resolve(ref) if isinstance(ref, str) else ref)
        layers, created = v.visible_layers(self._versions, view.chain, collection)
        listed = False
        for entry in v.iter_entries(self._versions, layers, collection, after):
            listed = True
            yield entry
        if not listed and not v.exists(self._versions, layers, created, collection, self._populated):
            raise NotFound(f"no collection {collection!r} in {view.ref}")

    @translating_iter
    def documents(self, ref: str | View, collection: str) -> Iterator[Document]:
        """Live documents with bodies, in name order, fetched a page at a time."""
        view = self._pin(self.resolve(ref) if isinstance(ref, str) else ref)
        batch: list[v.Entry] = []
        for entry in self.entries(view, collection):
            batch.append(entry)
            if len(batch) == v.PAGE:
                yield from self.bodies(collection, batch)
                batch = []
        yield from self.bodies(collection, batch)

    @translating_iter
    def bodies(self, collection: str, entries: list[v.Entry]) -> Iterator[Document]:
        """The documents the listed entries describe, in one round trip.  A version
        record never changes, so an entry's body can be fetched (and cached) at any time."""
        if not entries:
            return
        ids = [v.slot_id(e.branch_id, e.seq) for e in entries]
        found = {(r["b"], r["s"]): r for r in self._versions.find({"_id": {"$in": ids}})}
        for e in entries:
            rec = found[(e.branch_id, e.seq)]
            yield Document(collection, e.stem, _payload(rec), e.seq, e.size, e.hash, e.time, e.author)

    @translating
    def collections(self, ref: str | View) -> list[str]:
        view = self._pin(self.resolve(ref) if isinstance(ref, str) else ref)
        bids = [bid for bid, _ in view.chain]
        names = sorted({r["c"] for r in self.db["catalog"].find({"b": {"$in": bids}}, {"c": 1})})
        return [c for c in names if self._collection_exists(view, c)]

    @translating
    def collection_exists(self, ref: str | View, collection: str) -> bool:
        view = self.resolve(ref) if isinstance(ref, str) else ref
        return self._collection_exists(view, collection)

    def _collection_exists(self, view: View, collection: str) -> bool:
        layers, created = v.visible_layers(self._versions, view.chain, collection)
        return v.exists(self._versions, layers, created, collection, self._populated)

    # ------------------------------------------------------------------ writing

    def _catalog(self, bid: ObjectId, collection: str) -> None:
        """Record that a branch writes a collection, before its first version lands."""
        if (bid, collection) in self._catalogued:
            return
        check_collection_name(collection)
        catalog = self.db["catalog"]
        if catalog.find_one({"b": bid, "c": collection}, {"_id": 1}) is None:  # a read costs no journal sync
            catalog.update_one({"b": bid, "c": collection}, {"$setOnInsert": {"t": now()}}, upsert=True)
        self._catalogued.add((bid, collection))

    def _record(self, op: str, collection: str, stem: str, doc: dict[str, Any] | None = None, rendered: bytes | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {"c": collection, "k": stem, "op": op, "a": self.author, "t": now()}
        if doc is not None:
            rendered = rendered if rendered is not None else codec.render(doc)
            rec.update(d=doc, z=len(rendered), h=codec.content_hash(rendered))
        return rec

    def _append(self, view: View, records: list[dict[str, Any]]) -> int:
        """Append a direct write (refused on a protected branch)."""
        bid = view.branch_id
        guard = protect.Guard(self._versions, bid, view.branch)
        seq = v.append(self._versions, bid, records, self._heads.get(bid), guard)
        guard.written(seq)
        self._heads[bid] = seq
        return seq

    @translating
    def put(
        self, ref: str | View, collection: str, doc: dict[str, Any], *, stem: str | None = None, mtime: int | None = None, if_changed: bool = False
    ) -> Document:
        """Write a whole document as a new version.  ``stem`` (the file-name stem), when
        given, must match the document's ``_id``; a document without ``_id`` gets the id
        the stem names, or a new ObjectId.  ``mtime`` (ns since the epoch) is kept with
        the version as its modification time.  With ``if_changed``, a document whose
        content (and ``mtime``, when given) equals the current version is not written
        again: the current version is returned."""
        view = self._writable(ref)
        doc = prepare(doc, stem)
        stem = codec.id_to_stem(doc["_id"])
        rendered = codec.render(doc)
        self._catalog(view.branch_id, collection)
        rec = self._record(v.PUT, collection, stem, doc, rendered)
        if mtime is not None:
            rec["mt"] = mtime
        if if_changed:
            old = v.lookup_many(self._versions, view.chain, collection, [stem], bodies=False).get(stem)
            if old is not None and old["h"] == rec["h"] and (mtime is None or mtime == _mtime_ns(old)):
                self.check_writable(view)  # refused all the same
                return Document(collection, stem, doc, old["s"], old["z"], old["h"], old["t"], old["a"], old.get("mt"))
        seq = self._append(view, [rec])
        return Document(collection, stem, doc, seq, rec["z"], rec["h"], rec["t"], rec["a"], mtime)

    @translating
    def rename(self, ref: str | View, collection: str, stem: str, new_collection: str, new_stem: str) -> tuple[Document, int]:
        """Move a document to another name (and collection) of the same branch, atomically:
        the new name gets the document with the ``_id`` the name says, the old one is
        deleted, in one transaction.  Returns the new document and the commit slot."""
        view = self._writable(ref)
        if codec.is_hashed_stem(new_stem):
            raise InvalidDocument(f"cannot rename onto the hashed name {new_stem + codec.SUFFIX!r}")
        doc = dict(self.get(view, collection, stem).doc)
        doc["_id"] = codec.stem_to_id(new_stem)
        doc = prepare(doc, new_stem)
        self._catalog(view.branch_id, new_collection)
        put = self._record(v.PUT, new_collection, new_stem, doc)
        records = [put, self._record(v.DELETE, collection, stem)]
        commit = {"kind": "rename", "t": now(), "a": self.author, "message": f"{collection}/{stem} -> {new_collection}/{new_stem}"}
        guard = protect.Guard(self._versions, view.branch_id, view.branch)
        slot = v.append_atomic(self._versions, view.branch_id, records, self._heads.get(view.branch_id), new_bundle_id(), commit, guard)
        guard.written(slot)
        self._heads[view.branch_id] = slot
        return Document(new_collection, new_stem, doc, put["s"], put["z"], put["h"], put["t"], put["a"]), slot

    @translating
    def delete(self, ref: str | View, collection: str, stem: str) -> int:
        view = self._writable(ref)
        self.get(view, collection, stem)
        return self._append(view, [self._record(v.DELETE, collection, stem)])

    @translating
    def create_collection(self, ref: str | View, collection: str) -> int:
        view = self._writable(ref)
        check_collection_name(collection)
        if self.collection_exists(view, collection):
            raise AlreadyExists(f"collection {collection!r} already exists in {view.ref}")
        self._catalog(view.branch_id, collection)
        return self._append(view, [self._record(v.MKCOL, collection, v.MARKER_KEY)])

    @translating
    def drop_collection(self, ref: str | View, collection: str) -> int:
        """Hide a whole collection in this branch with one marker record.  O(1)."""
        view = self._writable(ref)
        if not self.collection_exists(view, collection):
            raise NotFound(f"no collection {collection!r} in {view.ref}")
        return self._append(view, [self._record(v.DROP, collection, v.MARKER_KEY)])

    def _hashes(self, view: View, collection: str) -> dict[str, str]:
        """Content hash of every live document of a collection, from one listing (no
        bodies): what an import compares against to skip unchanged documents."""
        pinned = self._pin(view)
        layers, _created = v.visible_layers(self._versions, pinned.chain, collection)
        return {e.stem: e.hash for e in v.iter_entries(self._versions, layers, collection)}

    @translating
    def import_documents(self, ref: str | View, collection: str, docs: Iterable[dict[str, Any]], *, batch_size: int = 1000, progress: Any = None) -> ImportCounts:
        """Write many documents in batches, skipping those whose content is unchanged,
        so re-running an import only writes what differs.  "Unchanged" is decided
        against one listing of the target taken at the start (sizes and hashes, no
        bodies), not a lookup per batch; it costs one hash string per live document.  Atomic: the versions are
        tagged as one transaction and committed at the end (versions.append_atomic), so
        readers see the whole import or none of it, and a failed one leaves nothing."""
        view = self._writable(ref)
        self._catalog(view.branch_id, collection)
        counts = ImportCounts()
        txn = new_bundle_id()
        written = 0
        current = self._hashes(view, collection)
        batch: dict[str, tuple[dict[str, Any], bytes]] = {}

        def flush() -> None:
            if not batch:
                return
            records = []
            for stem, (doc, rendered) in batch.items():
                old = current.get(stem)
                rec = self._record(v.PUT, collection, stem, doc, rendered)
                if old == rec["h"]:
                    counts.unchanged += 1
                    continue
                if old is None:
                    counts.added += 1
                else:
                    counts.updated += 1
                records.append(rec)
            if records:
                nonlocal written
                for rec in records:
                    rec["x"], rec["xk"] = txn, "import"
                self._append(view, records)
                written += len(records)
            if progress is not None:
                progress(len(batch))
            batch.clear()

        for raw in docs:
            doc = prepare(raw, None)
            stem = codec.id_to_stem(doc["_id"])
            if stem in batch:
                flush()
            batch[stem] = (doc, codec.render(doc))
            if len(batch) >= batch_size:
                flush()
        flush()
        if written:
            commit = {"kind": "import", "collection": collection, "a": self.author, "t": now()}
            bid = view.branch_id
            guard = protect.Guard(self._versions, bid, view.branch)
            self._heads[bid] = v.append_commit(self._versions, bid, txn, commit, self._heads.get(bid), guard)
        return counts


def _mtime_ns(rec: dict[str, Any]) -> int:
    """A version's modification time: the one set explicitly, or the version's time."""
    mt = rec.get("mt")
    return mt if mt is not None else v.time_ns(rec["t"])


def _payload(rec: dict[str, Any]) -> dict[str, Any]:
    """A version's document; gc reclaims only what no reader can see, so a missing one
    means a view of a branch deleted longer than gc's grace period ago."""
    if "d" not in rec:
        raise NotFound(f"version {rec['_id']} was reclaimed by 'argonfs gc' (its branch was deleted); resolve the ref again")
    return rec["d"]


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _same_doc(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return codec.render(a) == codec.render(b)


def _compare(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    if old is None:
        return d.ADDED if new is not None else None
    if new is None:
        return d.REMOVED
    return d.MODIFIED if old["h"] != new["h"] else None


def prepare(doc: dict[str, Any], stem: str | None) -> dict[str, Any]:
    """Validate a document for storage: an object, ``_id`` matching ``stem``, within size."""
    if not isinstance(doc, dict):
        raise InvalidDocument(f"a document must be an object, not {type(doc).__name__}")
    if "_id" not in doc:
        new_id: Any = ObjectId()
        if stem is not None:
            if codec.is_hashed_stem(stem):
                raise InvalidDocument(f"{stem + codec.SUFFIX!r} is a hashed name: the document must carry its _id")
            new_id = codec.stem_to_id(stem)
        doc = {"_id": new_id, **doc}
    doc = codec.normalise(doc)
    if stem is not None:
        codec.check_stem(stem, doc["_id"])
    if isinstance(doc["_id"], list):
        raise InvalidDocument("_id must not be an array")
    return doc


def _bundle_of(rec: dict[str, Any]) -> Bundle:
    return Bundle(rec["_id"], rec["b"], rec.get("branch", ""), rec["s"], rec["message"], rec["author"], rec["t"])
