"""Documents and collections of a view, read: one document (get, stat), listings in
pages, bodies in batches, collections.  A whole listing that read many records leaves a
checkpoint of its snapshot behind.  Writing them is in store/repo/writes.py, importing
many in store/repo/imports.py.  Blocking (pymongo).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

from bson.objectid import ObjectId
from pymongo.errors import PyMongoError

from argonfs import codec
from argonfs.errors import NotFound
from argonfs.store.db.mongo import translating, translating_iter
from argonfs.store.engine import bulk, lookup, packs
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import reading as r
from argonfs.store.engine import versions as v
from argonfs.store.repo.model import Document, View
from argonfs.store.repo.views import Views

log = logging.getLogger(__name__)

#: a whole listing that read at least this many version records (rather than checkpoint
#: entries) writes a checkpoint of its snapshot
CHECKPOINT_AFTER = 2000
#: entries per window of ``stream_bodies`` (16 packs' worth), and the pack rows it keeps
#: decoded while the listing may still reach into them (a listing in name order reaches
#: across the packs of an import written in another order)
STREAM_WINDOW = packs.MAX_DOCS * packs.IN_BATCH
STREAM_ROWS = 64


class Documents(Views):
    """Reading the documents of a repository; see ``Repository``."""

    @translating
    def get(self, ref: str | View, collection: str, stem: str) -> Document:
        view = self._view(ref)
        rec = lookup.lookup_many(self._versions, view.chain, collection, [stem]).get(stem)
        if rec is None:
            raise NotFound(f"no document {stem + codec.SUFFIX!r} in {view.ref}/{collection}")
        return Document(collection, stem, payload(rec), rec["s"], rec["z"], rec["h"], rec["t"], rec["a"], raw=v.kept(rec))

    @translating
    def get_id(self, ref: str | View, collection: str, doc_id: Any) -> Document:
        return self.get(ref, collection, codec.id_to_stem(doc_id))

    @translating
    def stat(self, ref: str | View, collection: str, stem: str) -> v.Entry:
        """What a listing knows of one document (size, hash, slot), without its body."""
        view = self._view(ref)
        rec = lookup.lookup_many(self._versions, view.chain, collection, [stem], bodies=False).get(stem)
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
        builder = DeferredCheckpoint(lambda: plan.streamed >= CHECKPOINT_AFTER) if not after and _worth_checkpointing(plan) else None
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
                yield Document(collection, rec["k"], payload(rec), rec["s"], rec["z"], rec["h"], rec["t"], rec["a"], rec.get("mt"), raw=v.kept(rec))
        else:
            listing = r.iter_entries(self._versions, plan, collection)
            while page := list(islice(listing, v.PAGE)):
                listed = True
                yield from self._bodies(collection, page)
        if not listed and not r.exists(self._versions, plan, collection, self._populated):
            raise NotFound(f"no collection {collection!r} in {view.ref}")

    @translating_iter
    def stream_bodies(self, ref: str | View, collection: str, *, window: int = STREAM_WINDOW) -> Iterator[tuple[v.Entry, bytes]]:
        """Every live document of a collection as ``(entry, bytes)`` in listing (name)
        order, for reading a whole collection (push, export): the bytes are what a read
        of the file returns (``Document.rendered``).  The snapshot is pinned when
        iteration starts.

        The listing is taken ``window`` entries at a time; the documents of a bulk
        write come from its packs, read as whole rows (one row holds up to 256
        documents; ``packs.IN_BATCH`` rows per round trip), each row once while the
        listing keeps reaching into it (the last ``STREAM_ROWS`` rows are kept), and
        the records written since (not in packs) by id, in batches.  The next window
        is read in a worker thread while this one is consumed: memory holds about two
        windows and the kept rows, never the collection.  Blocking."""
        view = self._pin(self._view(ref))
        listing = self.entries(view, collection)
        rows: OrderedDict[str, list[dict[str, Any] | None]] = OrderedDict()
        with ThreadPoolExecutor(1, thread_name_prefix="argonfs-stream") as pool:
            ahead: Future[list[tuple[v.Entry, bytes]]] | None = None
            while True:
                page = list(islice(listing, window))
                nxt = pool.submit(self._window, page, rows) if page else None
                if ahead is not None:
                    yield from ahead.result()
                if nxt is None:
                    return
                ahead = nxt

    def _window(self, page: list[v.Entry], rows: OrderedDict[str, list[dict[str, Any] | None]]) -> list[tuple[v.Entry, bytes]]:
        """The bytes of the listed entries: packed ones from their packs' rows (those
        not in ``rows`` read and kept there), the rest, and any packed one whose
        document the pack no longer holds, by id."""
        by_branch: dict[ObjectId, list[int]] = {}
        for e in page:
            by_branch.setdefault(e.branch_id, []).append(e.seq)
        slots = {(bid, seq): pid for bid, seqs in by_branch.items() for seq, pid in v.packed(self._versions, bid, seqs).items()}
        missing = [pid for pid in dict.fromkeys(slots.values()) if pid not in rows]
        if missing:
            rows.update(packs.read_documents(self.db, missing))
        out: list[bytes] = []
        rest: dict[str, int] = {}
        for i, e in enumerate(page):
            pid = slots.get((e.branch_id, e.seq))
            docs = rows.get(pid) if pid is not None else None
            doc = docs[e.seq - packs.first_slot(pid)] if docs is not None and pid is not None else None
            if doc is None:
                rest[v.slot_id(e.branch_id, e.seq)] = i
                out.append(b"")
            else:
                out.append(codec.render(doc))
        while len(rows) > STREAM_ROWS:
            rows.popitem(last=False)
        for rec in v.by_ids(self._versions, list(rest)):
            raw = v.kept(rec)
            out[rest.pop(rec["_id"])] = raw if raw is not None else codec.render(payload(rec))
        if rest:
            raise NotFound(f"versions {', '.join(sorted(rest)[:3])} are gone (reclaimed by 'argonfs gc'?); resolve the ref again")
        return list(zip(page, out, strict=True))

    @translating
    def count(self, ref: str | View, collection: str) -> int:
        """How many live documents a collection has: a checkpoint's count when the
        snapshot is one (a bundle's usually is), else a listing without bodies."""
        view = self._pin(self._view(ref))
        plan = r.plan(self._versions, view.chain, collection)
        if plan.checkpoint is not None and all(limit is not None and floor is not None and limit <= floor for _bid, limit, floor in plan.layers):
            return plan.checkpoint.count
        return sum(1 for _ in self.entries(view, collection))

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
            docs[(rec["b"], rec["s"])] = payload(rec)
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


def payload(rec: dict[str, Any]) -> dict[str, Any]:
    """A version's document; gc reclaims only what no reader can see, so a missing one
    means a view of a branch deleted longer than gc's grace period ago."""
    if "d" not in rec:
        raise NotFound(f"version {rec['_id']} was reclaimed by 'argonfs gc' (its branch was deleted); resolve the ref again")
    doc: dict[str, Any] = rec["d"]
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


class DeferredCheckpoint(cp.Builder):
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
