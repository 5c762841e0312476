"""Importing many documents into a branch (``import_documents``: one transaction of
bulk records, compared against the branch's listing so that only what changed is
written), and the quick check of a re-import: a source that has not changed since the last import
into a collection, which nothing has written since, needs no reading at all.

``argonfs import`` of a file or a directory fingerprints its source (sizes, times and
inodes, store/repo/transfer.py) the way rsync's quick check and git's index do.  A
successful import records, per (branch, collection), that fingerprint, the slot it
started from (the listing every source document was compared against) and its
transaction, in ``imports``.  The next import with the same fingerprint is skipped when
no record of the collection was appended to the branch above that slot, other than the
import's own: then every source document is still in the branch as that import left
it, so a full compare would write nothing.  Anything else (another fingerprint, a write
to the collection, more than ``MAX_SLOTS`` slots to look through besides the import's
own) means the full compare, which is always right.  Blocking pymongo code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from bson.objectid import ObjectId

from argonfs import codec
from argonfs.store.db.mongo import Db, translating
from argonfs.store.engine import bulk, commits
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine import reading as r
from argonfs.store.engine import versions as v
from argonfs.store.repo import protect
from argonfs.store.repo.documents import DeferredCheckpoint
from argonfs.store.repo.model import ImportCounts, View, new_bundle_id, now
from argonfs.store.repo.writes import Writes, prepare

IMPORTS = "imports"
#: slots above the recorded one read by id for the check, at most (the import's own bulk
#: slots are not read); past that, the full compare is cheaper than proving nothing changed
MAX_SLOTS = 20_000


def record(db: Db, bid: ObjectId, collection: str, fingerprint: str, since: int, txn: str, count: int) -> None:
    row = {"b": bid, "c": collection, "fp": fingerprint, "s": since, "x": txn, "n": count, "t": datetime.now(UTC).replace(tzinfo=None)}
    db[IMPORTS].replace_one({"_id": f"{bid}:{collection}"}, row, upsert=True)


def unchanged(db: Db, bid: ObjectId, collection: str, fingerprint: str, head: int) -> int | None:
    """The number of documents the last import of this source read, if re-importing it
    would write nothing; None when that is not known without the full compare."""
    row = db[IMPORTS].find_one({"_id": f"{bid}:{collection}"})
    if row is None or row["fp"] != fingerprint:
        return None
    versions = db["versions"]
    # the import's own bulk slots need no reading: its range records say which they are
    own = sorted((r["s"] + 1, r["s"] + r["rn"]) for r in v.ranges(versions, bid) if r.get("x") == row["x"] and r["s"] > row["s"])
    spans = _minus((row["s"] + 1, head), own)
    if sum(hi - lo + 1 for lo, hi in spans) > MAX_SLOTS:
        return None
    for lo, hi in spans:
        for low in range(lo, hi + 1, v.IN_BATCH):
            ids = [v.slot_id(bid, s) for s in range(low, min(low + v.IN_BATCH - 1, hi) + 1)]
            # records of other bulk writes are not needed: their range records name the collection
            for rec in versions.find({"_id": {"$in": ids}}, {"c": 1, "rc": 1, "x": 1}):
                if collection in (rec.get("c"), rec.get("rc")) and rec.get("x") != row["x"]:
                    return None
    count: Any = row["n"]
    return int(count)


def _minus(span: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The inclusive ``span`` without the sorted, disjoint inclusive ``holes``."""
    out, lo = [], span[0]
    for a, b in holes:
        if a > lo:
            out.append((lo, min(a - 1, span[1])))
        lo = max(lo, b + 1)
    if lo <= span[1]:
        out.append((lo, span[1]))
    return [(a, b) for a, b in out if a <= b]


class Imports(Writes):
    """Importing documents into a repository; see ``Repository``."""

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
        tagged as one transaction and committed at the end (commits.append_atomic), so
        readers see the whole import or none of it, and a failed one leaves nothing.
        With ``fingerprint`` (of the source's files, store/repo/transfer.py), a successful
        import records it for ``unchanged_import``."""
        view = self._writable(ref)
        self._catalog(view.branch_id, collection)
        counts = ImportCounts()
        txn = new_bundle_id()
        written = 0
        start = self._pin(view)
        listing = DeferredCheckpoint(lambda: written > 0)  # a re-import that writes nothing encodes nothing
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
            top = commits.append_bulk(self._versions, bid, records, self._heads.get(bid), txn, "import", guard)
            guard.written(top)
            self._heads[bid] = top
            mine.add(records, reserved=records[0]["s"] - 1)
            written += len(records)

        with _Pipeline() as ahead:
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
            slot = self._heads[bid] = commits.append_commit(self._versions, bid, txn, commit, self._heads.get(bid), guard)
            self._checkpoint_import(start, collection, mine, slot, written_listing)
        if fingerprint is not None:
            assert start.seq is not None
            record(self.db, view.branch_id, collection, fingerprint, start.seq, txn, counts.total)
        return counts

    @translating
    def unchanged_import(self, ref: str | View, collection: str, fingerprint: str) -> int | None:
        """The quick check of a re-import (``unchanged``): the number of documents the
        last import of a source with this fingerprint read into the collection, if
        importing it again would write nothing; None when only the full compare can tell."""
        view = self._writable(ref)
        return unchanged(self.db, view.branch_id, collection, fingerprint, self._head(view.branch_id))

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
        if any(commits.visible(self._versions, {"b": bid, "x": txn}, slot) for txn in mine.pending):
            return  # a transaction the start could not see committed meanwhile: its older records are in neither
        pending = set(mine.pending)
        foreign = mine.gaps(base, slot)
        for low in range(0, len(foreign), v.PAGE):
            ids = [v.slot_id(bid, s) for s in foreign[low : low + v.PAGE]]
            for rec in v.by_ids(self._versions, ids, v.NO_BODY):
                if rec["op"] == v.RANGE and rec["rc"] == collection and not commits.visible(self._versions, rec, slot):
                    pending.add(rec["x"])  # another bulk write, whose records may not be there yet
                if rec["c"] != collection:
                    continue
                if not commits.visible(self._versions, rec, slot):
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


class _Pipeline:
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

    def __enter__(self) -> _Pipeline:
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
