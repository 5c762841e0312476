"""Documents and collections of a view: reading them (get, stat, listings in pages,
bodies in batches, collections) and writing them to a branch (put, rename, delete,
create and drop a collection, import many), each write through the protection guard.

Every write appends version records (store/engine/versions.py) and never updates one; the
multi-record ones (rename, import) are one transaction, visible at its commit record.
Blocking (pymongo).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import islice
from typing import Any

import bson
from bson.objectid import ObjectId
from pymongo.errors import PyMongoError

from argonfs import codec
from argonfs.errors import AlreadyExists, InvalidDocument, NotFound
from argonfs.naming import check_collection_name
from argonfs.store.db.mongo import translating, translating_iter
from argonfs.store.engine import bulk, packs
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import reading as r
from argonfs.store.engine import versions as v
from argonfs.store.repo import imports, protect
from argonfs.store.repo.model import Change, Document, ImportCounts, View, new_bundle_id, now
from argonfs.store.repo.views import Views

log = logging.getLogger(__name__)

#: a whole listing that read at least this many version records (rather than checkpoint
#: entries) writes a checkpoint of its snapshot
CHECKPOINT_AFTER = 2000


class Documents(Views):
    """Reading and writing the documents of a repository; see ``Repository``."""

    # ------------------------------------------------------------------ reading

    @translating
    def get(self, ref: str | View, collection: str, stem: str) -> Document:
        view = self._view(ref)
        rec = r.lookup_many(self._versions, view.chain, collection, [stem]).get(stem)
        if rec is None:
            raise NotFound(f"no document {stem + codec.SUFFIX!r} in {view.ref}/{collection}")
        return Document(collection, stem, _payload(rec), rec["s"], rec["z"], rec["h"], rec["t"], rec["a"], raw=v.kept(rec))

    @translating
    def get_id(self, ref: str | View, collection: str, doc_id: Any) -> Document:
        return self.get(ref, collection, codec.id_to_stem(doc_id))

    @translating
    def stat(self, ref: str | View, collection: str, stem: str) -> v.Entry:
        """What a listing knows of one document (size, hash, slot), without its body."""
        view = self._view(ref)
        rec = r.lookup_many(self._versions, view.chain, collection, [stem], bodies=False).get(stem)
        if rec is None:
            raise NotFound(f"no document {stem + codec.SUFFIX!r} in {view.ref}/{collection}")
        return v.entry_of(rec)

    @translating_iter
    def entries(self, ref: str | View, collection: str, *, after: str = "") -> Iterator[v.Entry]:
        """Live documents of a collection in name order, without bodies, streamed in pages.
        The snapshot is pinned when iteration starts.  A whole listing that had to read
        many records leaves a checkpoint of that snapshot behind (store/engine/checkpoints.py),
        so the next listing of it or of a later head reads a few chunks instead."""
        view = self._pin(self._view(ref))
        plan = r.plan(self._versions, view.chain, collection)
        builder = _Deferred(lambda: plan.streamed >= CHECKPOINT_AFTER) if not after and _worth_checkpointing(plan) else None
        listed = 0
        for entry in r.iter_entries(self._versions, plan, collection, after):
            listed += 1
            if builder is not None:
                builder.add(entry)
                if listed == CHECKPOINT_AFTER and plan.streamed < CHECKPOINT_AFTER:
                    # A listing yields no entry it did not stream a record for, except
                    # a checkpoint's, which come after every record above it was read:
                    # so the count of records read is final, and too small to pay.
                    builder = None
            yield entry
        if not listed and not r.exists(self._versions, plan, collection, self._populated):
            raise NotFound(f"no collection {collection!r} in {view.ref}")
        if builder is not None and plan.streamed >= CHECKPOINT_AFTER:
            bid, seq = view.chain[0]
            assert seq is not None
            self._write_checkpoint(builder, view, collection, plan.pending | bulk.in_flight(self._versions, bid, collection, seq))

    def _write_checkpoint(self, builder: cp.Builder, view: View, collection: str, pending: set[str]) -> None:
        """Store a listing as a checkpoint; a failure costs only speed (a read-only user,
        a server that went away), so it is logged, not raised."""
        bid, seq = view.chain[0]
        assert seq is not None
        try:
            builder.write(self.db, bid, collection, seq, exists=True, pending=pending)
            log.debug("checkpoint of %s/%s at %s:%d: %d entries", view.ref, collection, bid, seq, builder.count)
        except PyMongoError as exc:
            log.warning("could not write a listing checkpoint of %s/%s: %s", view.ref, collection, exc)

    @translating_iter
    def documents(self, ref: str | View, collection: str) -> Iterator[Document]:
        """Live documents with bodies, in name order: with a checkpoint, listed and then
        fetched PAGE per round trip; without one, streamed by one scan of the records."""
        view = self._pin(self._view(ref))
        plan = r.plan(self._versions, view.chain, collection)
        listed = False
        if plan.checkpoint is None:
            for rec in r.iter_records(self._versions, plan.layers, collection, bodies=True):
                listed = True
                yield Document(collection, rec["k"], _payload(rec), rec["s"], rec["z"], rec["h"], rec["t"], rec["a"], rec.get("mt"), raw=v.kept(rec))
        else:
            listing = r.iter_entries(self._versions, plan, collection)
            while page := list(islice(listing, v.PAGE)):
                listed = True
                yield from self._bodies(collection, page)
        if not listed and not r.exists(self._versions, plan, collection, self._populated):
            raise NotFound(f"no collection {collection!r} in {view.ref}")

    @translating_iter
    def bodies(self, collection: str, entries: list[v.Entry]) -> Iterator[Document]:
        """The documents the listed entries describe, in one round trip.  A version
        record never changes, so an entry's body can be fetched (and cached) at any time."""
        return self._bodies(collection, entries)

    def _bodies(self, collection: str, entries: list[v.Entry]) -> Iterator[Document]:
        if not entries:
            return
        docs = packs.bodies(self.db, v.packs_of(self._versions, (e.version for e in entries)))  # imported: no record to read
        ids = [v.slot_id(e.branch_id, e.seq) for e in entries if e.version not in docs]
        raws: dict[tuple[ObjectId, int], bytes | None] = {}  # packs keep no bytes (packs.runs)
        for rec in v.by_ids(self._versions, ids):
            docs[(rec["b"], rec["s"])] = _payload(rec)
            raws[(rec["b"], rec["s"])] = v.kept(rec)
        for e in entries:
            yield Document(collection, e.stem, docs[e.version], e.seq, e.size, e.hash, e.time, e.author, e.mtime, raw=raws.get(e.version))

    @translating
    def collections(self, ref: str | View) -> list[str]:
        view = self._pin(self._view(ref))
        bids = [bid for bid, _ in view.chain]
        names = sorted({r["c"] for r in self.db["catalog"].find({"b": {"$in": bids}}, {"c": 1})})
        return [c for c in names if self._collection_exists(view, c)]

    @translating
    def collection_exists(self, ref: str | View, collection: str) -> bool:
        view = self._view(ref)
        return self._collection_exists(view, collection)

    def _collection_exists(self, view: View, collection: str) -> bool:
        plan = r.plan(self._versions, self._pin(view).chain, collection)
        return r.exists(self._versions, plan, collection, self._populated)

    # ------------------------------------------------------------------ writing

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
        seq = v.append(self._versions, bid, records, self._heads.get(bid), guard)
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
            old = r.lookup_many(self._versions, view.chain, collection, [stem], bodies=False).get(stem)
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
        slot = v.append_atomic(self._versions, view.branch_id, records, self._heads.get(view.branch_id), new_bundle_id(), commit, guard)
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
    def import_documents(
        self,
        ref: str | View,
        collection: str,
        docs: Iterable[dict[str, Any]],
        *,
        batch_size: int = 1000,
        progress: Any = None,
        fingerprint: str | None = None,
    ) -> ImportCounts:
        """Write many documents in batches, skipping those whose content is unchanged,
        so re-running an import only writes what differs.  "Unchanged" is decided
        against one listing of the target taken at the start (sizes and hashes, no
        bodies), not a lookup per batch; it costs one hash string per live document.  Atomic: the versions are
        tagged as one transaction and committed at the end (versions.append_atomic), so
        readers see the whole import or none of it, and a failed one leaves nothing.
        With ``fingerprint`` (of the source's files, store/repo/transfer.py), a successful
        import records it for ``unchanged_import``."""
        view = self._writable(ref)
        self._catalog(view.branch_id, collection)
        counts = ImportCounts()
        txn = new_bundle_id()
        written = 0
        start = self._pin(view)
        listing = _Deferred(lambda: written > 0)  # a re-import that writes nothing encodes nothing
        current, pending = self._hashes(start, collection, listing)
        mine = _Written(listing, pending)
        batch: dict[str, tuple[dict[str, Any], bytes]] = {}

        def flush() -> None:
            if not batch:
                return
            records = []
            at = now()  # a batch's versions share their time
            for stem, (doc, rendered) in batch.items():
                old = current.get(stem)
                if old is not None and old == codec.content_hash(rendered):
                    counts.unchanged += 1
                    continue
                if old is None:
                    counts.added += 1
                else:
                    counts.updated += 1
                records.append(self._record(v.PUT, collection, stem, doc, rendered, at))
            size = len(batch)
            ahead.then(lambda: append(records), None if progress is None else lambda: progress(size))
            batch.clear()

        def append(records: list[dict[str, Any]]) -> None:
            if not records:
                return
            nonlocal written
            bid = view.branch_id
            guard = protect.Guard(self._versions, bid, view.branch)
            top = v.append_bulk(self._versions, bid, records, self._heads.get(bid), txn, "import", guard)
            guard.written(top)
            self._heads[bid] = top
            mine.add(records, reserved=records[0]["s"] - 1)
            written += len(records)

        with _Ahead() as ahead:
            for raw in docs:
                doc = prepare(raw, None)
                stem = codec.id_to_stem(doc["_id"])
                if stem in batch:
                    flush()
                batch[stem] = (doc, codec.render(doc))
                if len(batch) >= batch_size:
                    flush()
            flush()
            ahead.wait()
        if written:
            commit = {"kind": "import", "collection": collection, "a": self.author, "t": now()}
            bid = view.branch_id
            lo, hi = mine.span()
            written_listing = cp.Builder()
            for stem in sorted(mine.records):
                written_listing.add(mine.records[stem])
            bulk.write(self.db, bid, txn, collection, written_listing, lo, hi)
            guard = protect.Guard(self._versions, bid, view.branch)
            slot = self._heads[bid] = v.append_commit(self._versions, bid, txn, commit, self._heads.get(bid), guard)
            self._checkpoint_import(start, collection, mine, slot, written_listing)
        if fingerprint is not None:
            assert start.seq is not None
            imports.record(self.db, view.branch_id, collection, fingerprint, start.seq, txn, counts.total)
        return counts

    @translating
    def unchanged_import(self, ref: str | View, collection: str, fingerprint: str) -> int | None:
        """The quick check of a re-import (store/repo/imports.py): the number of documents the
        last import of a source with this fingerprint read into the collection, if
        importing it again would write nothing; None when only the full compare can tell."""
        view = self._writable(ref)
        return imports.unchanged(self.db, view.branch_id, collection, fingerprint, self._head(view.branch_id))

    def _checkpoint_import(self, start: View, collection: str, mine: _Written, slot: int, written: cp.Builder) -> None:
        """Leave the checkpoint of the import's commit slot: the listing it started from,
        overlaid with what it wrote and with whatever other writers put between its first
        slot and its commit (read by slot id, normally nothing).  Built from memory, so an
        import of 100,000 documents does not list them back; an import into an empty
        collection writes the chunks of its bulk listing (``written``) again.  Skipped if another writer
        dropped or created the collection meanwhile (the next listing builds one)."""
        bid, base = start.chain[0]
        assert base is not None
        delta: dict[str, v.Entry | None] = dict(mine.records)  # None: deleted
        slots = {k: e.seq for k, e in mine.records.items()}
        if any(v.visible(self._versions, {"b": bid, "x": txn}, slot) for txn in mine.pending):
            return  # a transaction the start could not see committed meanwhile: its older records are in neither
        pending = set(mine.pending)
        foreign = mine.gaps(base, slot)
        for low in range(0, len(foreign), v.PAGE):
            ids = [v.slot_id(bid, s) for s in foreign[low : low + v.PAGE]]
            for rec in v.by_ids(self._versions, ids, v.NO_BODY):
                if rec["op"] == v.RANGE and rec["rc"] == collection and not v.visible(self._versions, rec, slot):
                    pending.add(rec["x"])  # another bulk write, whose records may not be there yet
                if rec["c"] != collection:
                    continue
                if not v.visible(self._versions, rec, slot):
                    pending.add(rec["x"])
                    continue
                k = rec["k"]
                if k == v.MARKER_KEY:
                    return
                if rec["s"] > slots.get(k, 0):
                    delta[k], slots[k] = (v.entry_of(rec) if rec["op"] == v.PUT else None), rec["s"]
        if next(mine.start.entries(), None) is None and len(delta) == len(mine.records) and all(delta[k] is e for k, e in mine.records.items()):
            builder = written  # into an empty collection, with nobody in between: the bulk listing's chunks
        else:
            builder = cp.Builder()
            for item in r.overlay(mine.start.entries(), [(k, delta[k]) for k in sorted(delta)]):
                builder.add(item)
        self._write_checkpoint(builder, View(start.ref, ((bid, slot), *start.chain[1:]), start.kind, start.branch, start.bundle), collection, pending)

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
        the commit record (versions.append_atomic's argument), so a crash part way
        leaves nothing visible.  Returns the commit slot, or None when there was nothing
        to write.  Used by ``pull`` and ``capture``; the caller decides what differs.

        ``txn`` names the transaction (default: a new id), so a caller can record it
        before writing and ask ``commit_record`` afterwards whether it committed;
        ``commit`` adds fields to the commit record (a capture's resume point);
        ``direct=False`` appends past branch protection, as merges do (a capture writes
        the branch it protects).  With ``bulk_min``, a run of at least that many puts of one
        collection in a batch is a bulk write (versions.append_bulk: no key index entry
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
                    top = self._heads[bid] = v.append_bulk(self._versions, bid, run, self._heads.get(bid), txn, kind, guard)
                    entries = bulked.setdefault(c, {})
                    for rec in run:
                        entries[rec["k"]] = v.entry_of(rec)
                    lo, _ = spans.get(c, (run[0]["s"] - 1, top))
                    spans[c] = (lo, top)
                else:
                    for rec in run:
                        rec["x"], rec["xk"] = txn, kind
                    self._heads[bid] = v.append(self._versions, bid, run, self._heads.get(bid), guard)
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
        slot = v.append_commit(self._versions, bid, txn, fields, self._heads.get(bid), guard)
        if guard is not None:
            guard.written(slot)
        self._heads[bid] = slot
        return slot

    @translating
    def commit_record(self, branch: str, txn: str) -> dict[str, Any] | None:
        """The commit record of a transaction in a branch (None: not committed), with the
        fields its writer added; one indexed query."""
        rec, _ = v.txn_state(self._versions, self._branch_id(branch), txn)
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


def _payload(rec: dict[str, Any]) -> dict[str, Any]:
    """A version's document; gc reclaims only what no reader can see, so a missing one
    means a view of a branch deleted longer than gc's grace period ago."""
    if "d" not in rec:
        raise NotFound(f"version {rec['_id']} was reclaimed by 'argonfs gc' (its branch was deleted); resolve the ref again")
    doc: dict[str, Any] = rec["d"]
    return doc


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


def _worth_checkpointing(plan: r.Plan) -> bool:
    """Whether a listing could read ``CHECKPOINT_AFTER`` records: a slot holds one
    record, so the slots of its layers (above the checkpoint, or from the first) are as
    many as it can read; a branch forked after its parent's checkpoint and changed a
    little since reads at most its own few slots."""
    room = 0
    for _bid, limit, floor in plan.layers:
        if limit is None:
            return True
        room += limit - (floor or 0)
    return room >= CHECKPOINT_AFTER


class _Deferred(cp.Builder):
    """A checkpoint builder that encodes nothing until ``ready()`` says the checkpoint
    will be written (or it holds ``HOLD`` entries): most listings above a checkpoint
    read a few records and write none, and a re-import of unchanged documents writes
    nothing, so neither should pay for encoding one."""

    HOLD = 100_000

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._ready = ready
        self._held: list[v.Entry] | None = []

    def add(self, entry: v.Entry) -> None:
        held = self._held
        if held is None:
            super().add(entry)
            return
        held.append(entry)
        if len(held) >= self.HOLD or self._ready():
            self._held = None
            for e in held:
                super().add(e)

    def _seal(self) -> None:
        if self._held is not None:  # being written: encode what is held first
            held, self._held = self._held, None
            for e in held:
                super().add(e)
        super()._seal()


class _Ahead:
    """One step at a time on a thread of its own, so that an import renders and hashes
    its next batch while the server stores the last one.  Steps run in the order given,
    each after the one before has finished (appends stay sequential), and ``after``
    runs on the caller's thread once its step is done; a step's error is raised by the
    next ``then`` or ``wait``."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="argonfs-import")
        self._running: tuple[Future[None], Callable[[], None] | None] | None = None

    def then(self, step: Callable[[], None], after: Callable[[], None] | None = None) -> None:
        self.wait()
        self._running = (self._pool.submit(step), after)

    def wait(self) -> None:
        if self._running is not None:
            future, after = self._running
            self._running = None
            future.result()
            if after is not None:
                after()

    def __enter__(self) -> _Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)  # a failed import waits for its last append


class _Written:
    """What a bulk write started from (its listing, and the transactions that listing
    could not see), the records it appended (without their documents), and the runs of
    slots they and their range records took."""

    def __init__(self, start: cp.Builder, pending: set[str]) -> None:
        self.start = start
        self.pending = pending
        self.records: dict[str, v.Entry] = {}  # puts only: an import writes no deletes
        self._runs: list[tuple[int, int]] = []

    def add(self, records: list[dict[str, Any]], reserved: int) -> None:
        """Note appended records and the range record (``reserved``) before them."""
        for rec in records:
            self.records[rec["k"]] = v.entry_of(rec)
        lo, hi = reserved, records[-1]["s"]
        if self._runs and self._runs[-1][1] == lo - 1:
            self._runs[-1] = (self._runs[-1][0], hi)
        else:
            self._runs.append((lo, hi))

    def span(self) -> tuple[int, int]:
        """The first and last slot taken."""
        return self._runs[0][0], self._runs[-1][1]

    def gaps(self, base: int, top: int) -> list[int]:
        """The slots in ``(base, top)`` that this write did not take (other writers')."""
        out: list[int] = []
        nxt = base + 1
        for lo, hi in self._runs:
            out += range(nxt, min(lo, top))
            nxt = max(nxt, hi + 1)
        out += range(nxt, top)
        return out
