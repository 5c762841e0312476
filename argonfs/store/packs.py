"""Body packs: the documents of a bulk write, many consecutive slots to a stored row.

A bulk write's records (versions.append_bulk) keep their metadata in ``bulk_versions``;
their documents go, in runs of consecutive slots, to rows of ``bulk_bodies``: one row
holds the documents of up to ``MAX_DOCS`` slots (at most ``MAX_BYTES`` of rendered
JSON), in slot order, under the id of its first slot.  A record whose document went to a
pack names the pack (``p``); a document larger than ``MAX_DOC``, and a delete, stay in
their record.  The write's range record lists its packs (``pk``: offset and count of
each run from the first reserved slot), so a reader that knows a branch's range records
finds the body of a slot without reading its record.

Why: SecantusDB answers a query by ``_id`` at about 0.3 ms per id (``$in`` of 100) and
scans the collection for an ``_id`` range, while one row of 256 documents comes back in
about 1 ms.  Cold reads of imported documents (the mount, ``Repository.documents``, the
training loaders) are bound by that (docs/benchmarks.md, "Body packs").

Packs are written with their records, before the bulk listing and the commit record, so
they follow the same rule as any record of a transaction: seen only once it commits.  A
pack never changes; ``argonfs gc`` deletes one once every record in it is reclaimed
(store/gc.py).  Blocking pymongo code.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument

from argonfs.store.mongo import Db

PACKS = "bulk_bodies"
MAX_DOCS = 256
MAX_BYTES = 1 << 20
#: a document rendered larger than this keeps its own record (a pack must stay far
#: below MongoDB's 16 MiB per row whatever BSON makes of the JSON sizes)
MAX_DOC = 64 << 10
#: packs per ``$in``: each is up to MAX_BYTES
IN_BATCH = 16


def runs(records: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Where a bulk write's records go in packs: (offset, count) of each run of
    consecutive records with a document of at most MAX_DOC bytes, cut at MAX_DOCS
    documents or MAX_BYTES."""
    out: list[tuple[int, int]] = []
    start, count, size = 0, 0, 0
    for i, rec in enumerate(records):
        z = rec.get("z", 0)
        packable = "d" in rec and z <= MAX_DOC
        if count and (not packable or count == MAX_DOCS or size + z > MAX_BYTES):
            out.append((start, count))
            count = 0
        if packable:
            if not count:
                start, size = i, 0
            count += 1
            size += z
    if count:
        out.append((start, count))
    return out


def pack_id(bid: ObjectId, first: int) -> str:
    return f"{bid}:{first}"


def first_slot(pid: str) -> int:
    return int(pid.rpartition(":")[2])


def store(db: Db, bid: ObjectId, txn: str, records: list[dict[str, Any]], layout: list[tuple[int, int]]) -> None:
    """Move the documents of records already given their slots (``s``) into packs, as
    ``layout`` (``runs``) cuts them, and insert the packs."""
    rows = []
    for offset, count in layout:
        part = records[offset : offset + count]
        pid = pack_id(bid, part[0]["s"])
        docs = []
        for rec in part:
            docs.append(rec.pop("d"))
            rec["p"] = pid
        rows.append({"_id": pid, "b": bid, "x": txn, "n": count, "z": sum(r["z"] for r in part), "d": docs})
    if rows:
        db[PACKS].insert_many(rows, ordered=False)


class _Cache:
    """The packs last read in this process, as BSON, by id, up to ``limit`` bytes: a
    reader going through a listing reads each pack once even when its windows straddle
    two.  Packs never change, so an entry is never stale; each reader decodes its own
    copy, so no caller shares a document with another."""

    def __init__(self, limit: int = 16 * MAX_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self.rows: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, pid: str) -> bytes | None:
        with self.lock:
            raw = self.rows.get(pid)
            if raw is not None:
                self.rows.move_to_end(pid)
            return raw

    def put(self, pid: str, raw: bytes) -> None:
        with self.lock:
            if pid in self.rows:
                return
            self.rows[pid] = raw
            self.size += len(raw)
            while self.size > self.limit and len(self.rows) > 1:
                _, old = self.rows.popitem(last=False)
                self.size -= len(old)


_CACHE = _Cache()


def fetch(db: Db, pids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The documents of the packs with these ids that exist (a missing one was
    reclaimed by gc), freshly decoded."""
    raws: dict[str, bytes] = {}
    missing = []
    for pid in dict.fromkeys(pids):
        raw = _CACHE.get(pid)
        if raw is None:
            missing.append(pid)
        else:
            raws[pid] = raw
    coll = db[PACKS].with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    for start in range(0, len(missing), IN_BATCH):
        for row in coll.find({"_id": {"$in": missing[start : start + IN_BATCH]}}, {"d": 1}):
            raw = bytes(row.raw)
            _CACHE.put(row["_id"], raw)
            raws[row["_id"]] = raw
    return {pid: bson.decode(raw, codec_options=db.codec_options)["d"] for pid, raw in raws.items()}


def bodies(db: Db, slots: Mapping[tuple[ObjectId, int], str]) -> dict[tuple[ObjectId, int], dict[str, Any]]:
    """The documents of slots ``(branch id, seq)`` from their packs (``slots`` names
    each one's pack); a slot whose pack is gone is left out."""
    rows = fetch(db, slots.values())
    out = {}
    for (bid, seq), pid in slots.items():
        docs = rows.get(pid)
        if docs is not None:
            out[(bid, seq)] = docs[seq - first_slot(pid)]
    return out


def fill(db: Db, records: list[dict[str, Any]]) -> None:
    """Give each record whose document is in a pack (``p``) its document ``d``."""
    wanted = {(r["b"], r["s"]): r["p"] for r in records if "p" in r and "d" not in r}
    if not wanted:
        return
    docs = bodies(db, wanted)
    for rec in records:
        if "p" in rec and "d" not in rec and (rec["b"], rec["s"]) in docs:
            rec["d"] = docs[(rec["b"], rec["s"])]


def reclaimable(db: Db, pids: Iterable[str]) -> list[str]:
    """Of these packs, those in which every record is reclaimed (has ``gc``)."""
    from argonfs.store import versions as v

    out = []
    for pid in sorted(set(pids)):
        row = db[PACKS].find_one({"_id": pid}, {"n": 1, "b": 1})
        if row is None:
            continue
        first = first_slot(pid)
        ids = [v.slot_id(row["b"], s) for s in range(first, first + row["n"])]
        recs = list(v.by_ids(db["versions"], ids, {"gc": 1}))
        if len(recs) == len(ids) and all("gc" in rec for rec in recs):
            out.append(pid)
    return out


def delete(db: Db, pids: list[str]) -> None:
    for start in range(0, len(pids), IN_BATCH):
        db[PACKS].delete_many({"_id": {"$in": pids[start : start + IN_BATCH]}})
