"""Writing documents and collections to a branch: put, rename, delete, create and drop
a collection, and apply a batch of changes, each write through the protection guard.

Every write appends version records (store/engine/commits.py) and never updates one;
the multi-record ones (rename, apply) are one transaction, visible at its commit record.
Blocking (pymongo).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import bson
from bson.objectid import ObjectId

from argonfs import codec
from argonfs.errors import AlreadyExists, InvalidDocument, NotFound
from argonfs.naming import check_collection_name
from argonfs.store.db.mongo import translating
from argonfs.store.engine import bulk, commits, lookup
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import reading as r
from argonfs.store.engine import versions as v
from argonfs.store.repo import protect
from argonfs.store.repo.documents import Documents
from argonfs.store.repo.model import Change, Document, View, new_bundle_id, now


class Writes(Documents):
    """Writing the documents of a repository; see ``Repository``."""

    @translating
    def check_writable(self, ref: str | View, seq: int | None = None) -> None:
        """Raise ``Protected`` (or ``ReadOnly``) if a direct write to ``ref`` would be
        refused as of slot ``seq`` (default: the head), so a front end can refuse early,
        e.g. the mount at ``open()``.  The write itself is checked again when it lands."""
        view = self._writable(ref)
        protect.Guard(self._versions, view.branch_id, view.branch)(self._head(view.branch_id) if seq is None else seq)

    def _catalog(self, bid: ObjectId, collection: str) -> None:
        """Record that a branch writes a collection, before its first version lands."""
        if (bid, collection) in self._catalogued:
            return
        check_collection_name(collection)
        catalog = self.db["catalog"]
        if catalog.find_one({"b": bid, "c": collection}, {"_id": 1}) is None:  # a read costs no journal sync
            catalog.update_one({"b": bid, "c": collection}, {"$setOnInsert": {"t": now()}}, upsert=True)
        self._catalogued.add((bid, collection))

    def _record(
        self,
        op: str,
        collection: str,
        stem: str,
        doc: dict[str, Any] | None = None,
        rendered: bytes | None = None,
        at: datetime | None = None,
        raw: bytes | None = None,
    ) -> dict[str, Any]:
        """A version record; a put's ``z`` and ``h`` are those of the bytes it reads as:
        ``raw`` (the JSON ``doc`` was parsed from) when given and not the canonical
        rendering, kept in the record (``versions.kept_fields``), else the rendering."""
        rec: dict[str, Any] = {"c": collection, "k": stem, "op": op, "a": self.author, "t": at or now()}
        if doc is not None:
            rendered = rendered if rendered is not None else codec.render(doc)
            if raw is not None and raw != rendered:
                rendered = raw
                rec.update(v.kept_fields(raw))
            rec.update(d=doc, z=len(rendered), h=codec.content_hash(rendered))
        return rec

    def _append(self, view: View, records: list[dict[str, Any]]) -> int:
        """Append a direct write (refused on a protected branch)."""
        bid = view.branch_id
        guard = protect.Guard(self._versions, bid, view.branch)
        seq = commits.append(self._versions, bid, records, self._heads.get(bid), guard)
        guard.written(seq)
        self._heads[bid] = seq
        return seq

    @translating
    def put(
        self,
        ref: str | View,
        collection: str,
        doc: dict[str, Any],
        *,
        stem: str | None = None,
        mtime: int | None = None,
        if_changed: bool = False,
        raw: bytes | None = None,
    ) -> Document:
        """Write a whole document as a new version.  ``stem`` (the file-name stem), when
        given, must match the document's ``_id``; a document without ``_id`` gets the id
        the stem names, or a new ObjectId.  ``mtime`` (ns since the epoch) is kept with
        the version as its modification time.  ``raw``: the JSON bytes ``doc`` was
        parsed from (a file written through the mount); the version reads as those
        bytes when the document is theirs (``kept_bytes``), else as the canonical
        rendering.  With ``if_changed``, a version whose bytes (and ``mtime``, when
        given) equal the current version's is not written again: the current version is
        returned."""
        view = self._writable(ref)
        doc = prepare(doc, stem)
        stem = codec.id_to_stem(doc["_id"])
        rendered = codec.render(doc)
        raw = kept_bytes(raw, doc, stem) if raw is not None and raw != rendered else None
        self._catalog(view.branch_id, collection)
        rec = self._record(v.PUT, collection, stem, doc, rendered, raw=raw)
        if mtime is not None:
            rec["mt"] = mtime
        if if_changed:
            old = lookup.lookup_many(self._versions, view.chain, collection, [stem], bodies=False).get(stem)
            if old is not None and old["h"] == rec["h"] and (mtime is None or mtime == _mtime_ns(old)):
                self.check_writable(view)  # refused all the same
                return Document(collection, stem, doc, old["s"], old["z"], old["h"], old["t"], old["a"], old.get("mt"), old["b"], stored=False, raw=v.kept(rec))
        seq = self._append(view, [rec])
        return Document(collection, stem, doc, seq, rec["z"], rec["h"], rec["t"], rec["a"], mtime, view.branch_id, raw=v.kept(rec))

    @translating
    def rename(self, ref: str | View, collection: str, stem: str, new_collection: str, new_stem: str) -> tuple[Document, int]:
        """Move a document to another name (and collection) of the same branch, atomically:
        the new name gets the document with the ``_id`` the name says, the old one is
        deleted, in one transaction.  Returns the new document and the commit slot."""
        view = self._writable(ref)
        if codec.is_hashed_stem(new_stem):
            raise InvalidDocument(f"cannot rename onto the hashed name {new_stem + codec.SUFFIX!r}")
        old = self.get(view, collection, stem)
        doc = dict(old.doc)
        doc["_id"] = codec.stem_to_id(new_stem)
        doc = prepare(doc, new_stem)
        raw = kept_bytes(old.raw, doc, new_stem) if old.raw is not None else None  # bytes without an _id move along
        self._catalog(view.branch_id, new_collection)
        put = self._record(v.PUT, new_collection, new_stem, doc, raw=raw)
        records = [put, self._record(v.DELETE, collection, stem)]
        commit = {"kind": "rename", "t": now(), "a": self.author, "message": f"{collection}/{stem} -> {new_collection}/{new_stem}"}
        guard = protect.Guard(self._versions, view.branch_id, view.branch)
        slot = commits.append_atomic(self._versions, view.branch_id, records, self._heads.get(view.branch_id), new_bundle_id(), commit, guard)
        guard.written(slot)
        self._heads[view.branch_id] = slot
        return Document(new_collection, new_stem, doc, put["s"], put["z"], put["h"], put["t"], put["a"], raw=v.kept(put)), slot

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

    def _hashes(self, view: View, collection: str, keep: cp.Builder | None = None) -> tuple[dict[str, str], set[str]]:
        """Content hash of every live document of a pinned view's collection, from one
        listing (no bodies): what an import compares against to skip unchanged
        documents; also the transactions the listing could not see yet (Plan.pending).
        ``keep`` collects the listing itself."""
        plan = r.plan(self._versions, view.chain, collection)
        hashes = {}
        for e in r.iter_entries(self._versions, plan, collection):
            hashes[e.stem] = e.hash
            if keep is not None:
                keep.add(e)
        return hashes, plan.pending

    @translating
    def hashes(self, ref: str | View, collection: str) -> dict[str, str]:
        """Content hash of every live document of a collection, by file stem, from one
        listing (no bodies)."""
        return self._hashes(self._pin(self._view(ref)), collection)[0]

    @translating
    def apply(
        self,
        ref: str | View,
        changes: Iterable[Change],
        *,
        kind: str,
        message: str = "",
        batch_size: int = 1000,
        txn: str | None = None,
        commit: Mapping[str, Any] | None = None,
        direct: bool = True,
        bulk_min: int = 0,
    ) -> int | None:
        """Write a stream of changes to several collections as one transaction: appended
        in batches as they come, tagged with one transaction id, and visible together at
        the commit record (commits.append_atomic's argument), so a crash part way
        leaves nothing visible.  Returns the commit slot, or None when there was nothing
        to write.  Used by ``pull`` and ``capture``; the caller decides what differs.

        ``txn`` names the transaction (default: a new id), so a caller can record it
        before writing and ask ``commit_record`` afterwards whether it committed;
        ``commit`` adds fields to the commit record (a capture's resume point);
        ``direct=False`` appends past branch protection, as merges do (a capture writes
        the branch it protects).  With ``bulk_min``, a run of at least that many puts of one
        collection in a batch is a bulk write (commits.append_bulk: no key index entry
        per record), and the transaction's bulk listing of each such collection is
        stored before its commit, as an import does; runs keep the order of the changes,
        so a later change of a name always takes a higher slot."""
        view = self._writable(ref)
        bid = view.branch_id
        guard = protect.Guard(self._versions, bid, view.branch) if direct else None
        txn = txn or new_bundle_id()
        batch: list[dict[str, Any]] = []
        written = 0
        bulked: dict[str, dict[str, v.Entry]] = {}  # collection -> newest bulk entry by name
        spans: dict[str, tuple[int, int]] = {}

        def flush() -> None:
            nonlocal written
            for run in _runs(batch):
                c = run[0]["c"]
                if bulk_min and len(run) >= bulk_min and run[0]["op"] == v.PUT:
                    top = self._heads[bid] = commits.append_bulk(self._versions, bid, run, self._heads.get(bid), txn, kind, guard)
                    entries = bulked.setdefault(c, {})
                    for rec in run:
                        entries[rec["k"]] = v.entry_of(rec)
                    lo, _ = spans.get(c, (run[0]["s"] - 1, top))
                    spans[c] = (lo, top)
                else:
                    for rec in run:
                        rec["x"], rec["xk"] = txn, kind
                    self._heads[bid] = commits.append(self._versions, bid, run, self._heads.get(bid), guard)
                written += len(run)
            batch.clear()

        for change in changes:
            self._catalog(bid, change.collection)
            if change.op == v.PUT:
                assert change.doc is not None
                doc = change.doc if change.prepared else prepare(change.doc, change.stem)
                stem = change.stem if change.prepared else codec.id_to_stem(doc["_id"])
                raw = kept_bytes(change.raw, doc, stem) if change.raw is not None else None
                rec = self._record(v.PUT, change.collection, stem, doc, raw=raw)
                if change.mtime is not None:
                    rec["mt"] = change.mtime
            else:
                rec = self._record(change.op, change.collection, change.stem if change.op == v.DELETE else v.MARKER_KEY)
            batch.append(rec)
            if len(batch) >= batch_size:
                flush()
        flush()
        if not written:
            return None
        for c, entries in bulked.items():
            listing = cp.Builder()
            for stem in sorted(entries):
                listing.add(entries[stem])
            bulk.write(self.db, bid, txn, c, listing, *spans[c])
        fields = {**(commit or {}), "kind": kind, "a": self.author, "t": now(), "message": message}
        slot = commits.append_commit(self._versions, bid, txn, fields, self._heads.get(bid), guard)
        if guard is not None:
            guard.written(slot)
        self._heads[bid] = slot
        return slot

    @translating
    def commit_record(self, branch: str, txn: str) -> dict[str, Any] | None:
        """The commit record of a transaction in a branch (None: not committed), with the
        fields its writer added; one indexed query."""
        rec, _ = commits.txn_state(self._versions, self._branch_id(branch), txn)
        return rec


def _runs(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive records of the same op class (put or not) and collection, in order."""
    run: list[dict[str, Any]] = []
    for rec in records:
        if run and (rec["c"] != run[0]["c"] or (rec["op"] == v.PUT) != (run[0]["op"] == v.PUT)):
            yield run
            run = []
        run.append(rec)
    if run:
        yield run


def _mtime_ns(rec: dict[str, Any]) -> int:
    """A version's modification time: the one set explicitly, or the version's time."""
    mt = rec.get("mt")
    return mt if mt is not None else v.time_ns(rec["t"])


def kept_bytes(raw: bytes, doc: dict[str, Any], stem: str) -> bytes | None:
    """``raw`` if it is JSON of exactly this document (parsed, and given the id its name
    says when it has none, it is ``doc``, to the BSON byte), else None: bytes that do
    not say the stored document (an ``_id`` a rename or a mount rewrote) are not kept."""
    try:
        again = prepare(codec.parse(raw), stem)
    except InvalidDocument:
        return None
    return raw if bson.encode(again) == bson.encode(doc) else None


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
