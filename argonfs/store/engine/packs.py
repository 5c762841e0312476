"""Packs: the records of a bulk write, many consecutive slots to a stored row.

SecantusDB's cost of an insert is mostly per stored document: a row holding 256 records
and their documents goes in at about five times the records per second of one row each,
and comes back in about 1 ms, where reading 256 rows by ``_id`` takes about 40 ms (0.3
ms per id in an ``$in`` of 100; an ``_id`` range is a collection scan).  So a bulk write
(commits.append_bulk: an import, a capture's runs of puts) stores the puts of each run
of up to ``MAX_DOCS`` consecutive slots (at most ``MAX_BYTES`` of rendered JSON) as one
row of ``bulk_packs``, under the id of the run's first slot:

    {_id: "<branch id>:<first slot>", b, c, a, x, xk, n,
     r: [[k, z, h, t, mt], ...],   the records' own fields, in slot order
     d: [document, ...],           their documents (None once gc reclaimed one)
     g: {"<i>": time}}             gc's marks

A put whose document renders larger than ``MAX_DOC``, a put that keeps its writer's bytes
(``w``, versions.kept_fields: a pull of such a version), and a delete, keep a row of their
own in ``bulk_versions``.  The write's range record lists the runs (``pk``: offset from
its first reserved slot, and count), so a reader that knows a branch's range records
finds a slot's pack without a query; ``versions.by_ids`` gives a packed slot's record
exactly as a ``bulk_versions`` row would be, with ``p`` naming its pack.

A pack is written before the transaction's bulk listing and commit record, so it is
seen only once the transaction commits, like any record of it.  Nothing in a pack
changes but gc's marks: gc blanks a record by setting its document to None and its mark
(store/repo/gc.py); the record stays, so every slot stays filled.  Blocking pymongo code.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument

from argonfs.store.db.mongo import Db

PACKS = "bulk_packs"
MAX_DOCS = 256
MAX_BYTES = 1 << 20
#: a document rendered larger than this keeps its own row (a pack must stay far below
#: MongoDB's 16 MiB per row whatever BSON makes of the JSON sizes)
MAX_DOC = 64 << 10
#: packs per ``$in``: each is up to MAX_BYTES
IN_BATCH = 16
_PUT = "put"


def runs(records: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Which of a bulk write's records go in packs: (offset, count) of each run of
    consecutive puts of the same author with a document of at most MAX_DOC bytes, cut
    at MAX_DOCS records or MAX_BYTES."""
    out: list[tuple[int, int]] = []
    start, count, size = 0, 0, 0
    for i, rec in enumerate(records):
        z = rec.get("z", 0)
        packable = rec["op"] == _PUT and "d" in rec and z <= MAX_DOC and "w" not in rec  # kept bytes: a row of its own
        if count and (not packable or count == MAX_DOCS or size + z > MAX_BYTES or rec["a"] != records[start]["a"]):
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


def rows(records: list[dict[str, Any]], layout: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The pack rows of records already given their slots and transaction (``s``,
    ``b``, ``x``, ``xk``), as ``layout`` (``runs``) cuts them."""
    out = []
    for offset, count in layout:
        part = records[offset : offset + count]
        head = part[0]
        out.append(
            {
                "_id": pack_id(head["b"], head["s"]),
                **{f: head[f] for f in ("b", "c", "a", "x", "xk")},
                "n": count,
                "z": sum(r["z"] for r in part),
                "r": [[r["k"], r["z"], r["h"], r["t"], r.get("mt")] for r in part],
                "d": [r["d"] for r in part],
            }
        )
    return out


class Pack:
    """A pack row as read: its shared fields, its records' own fields, and each
    document as BSON, decoded only when asked for (a shuffled reader wants one document
    of many packs), into a copy of the caller's own."""

    __slots__ = ("docs", "own", "row", "size")

    def __init__(self, raw: RawBSONDocument) -> None:
        self.row = {k: raw[k] for k in ("_id", "b", "c", "a", "x", "xk", "n")}
        self.row["g"] = dict(raw.get("g") or {})
        self.own = [list(r) for r in raw["r"]]
        self.docs = [None if d is None else bytes(d.raw) for d in raw["d"]]
        self.size = len(raw.raw)

    def doc(self, i: int) -> dict[str, Any] | None:
        data = self.docs[i]
        return None if data is None else bson.decode(data)

    def record(self, i: int, body: bool = True) -> dict[str, Any]:
        """The version record of slot ``first + i``, as ``bulk_versions`` would hold it,
        with ``p`` naming the pack (and, with ``body``, its document)."""
        row = self.row
        first = first_slot(row["_id"])
        k, z, h, t, mt = self.own[i]
        rec: dict[str, Any] = {"_id": pack_id(row["b"], first + i), "b": row["b"], "s": first + i}
        rec.update(c=row["c"], k=k, op=_PUT, z=z, h=h, a=row["a"], t=t, x=row["x"], xk=row["xk"], p=row["_id"])
        if mt is not None:
            rec["mt"] = mt
        mark = row["g"].get(str(i))
        if mark is not None:
            rec["gc"] = mark
        elif body:
            doc = self.doc(i)
            if doc is not None:
                rec["d"] = doc
        return rec


class _Cache:
    """The packs last read in this process, by id, up to ``limit`` bytes of BSON: a
    reader going through a listing reads each pack once even when its windows straddle
    two.  Only gc's marks ever change in a pack; gc forgets what it touches, and a copy
    read before another process's gc still holds documents nobody can see any more."""

    def __init__(self, limit: int = 16 * MAX_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self.rows: OrderedDict[str, Pack] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, pid: str) -> Pack | None:
        with self.lock:
            pack = self.rows.get(pid)
            if pack is not None:
                self.rows.move_to_end(pid)
            return pack

    def put(self, pid: str, pack: Pack) -> None:
        with self.lock:
            if pid in self.rows:
                return
            self.rows[pid] = pack
            self.size += pack.size
            while self.size > self.limit and len(self.rows) > 1:
                _, old = self.rows.popitem(last=False)
                self.size -= old.size

    def forget(self, pids: Iterable[str] | None = None) -> None:
        with self.lock:
            for pid in list(self.rows) if pids is None else pids:
                old = self.rows.pop(pid, None)
                if old is not None:
                    self.size -= old.size


_CACHE = _Cache()


def forget(pids: Iterable[str] | None = None) -> None:
    """Drop these packs (default: all) from this process's cache."""
    _CACHE.forget(pids)


def fetch(db: Db, pids: Iterable[str]) -> dict[str, Pack]:
    """The packs with these ids that exist."""
    out: dict[str, Pack] = {}
    missing = []
    for pid in dict.fromkeys(pids):
        pack = _CACHE.get(pid)
        if pack is None:
            missing.append(pid)
        else:
            out[pid] = pack
    coll = db[PACKS].with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    for start in range(0, len(missing), IN_BATCH):
        for raw in coll.find({"_id": {"$in": missing[start : start + IN_BATCH]}}):
            pack = Pack(raw)
            _CACHE.put(pack.row["_id"], pack)
            out[pack.row["_id"]] = pack
    return out


def read_documents(db: Db, pids: Iterable[str]) -> dict[str, list[dict[str, Any] | None]]:
    """The documents of the packs with these ids (those that exist), decoded, in slot
    order (None where gc reclaimed one): ``IN_BATCH`` whole rows per round trip, each
    decoded by one call into the C codec, for a reader that wants every document of a
    pack (a stream of a whole collection).  Not cached: such a reader reads a row once."""
    out: dict[str, list[dict[str, Any] | None]] = {}
    wanted = list(dict.fromkeys(pids))
    for start in range(0, len(wanted), IN_BATCH):
        for row in db[PACKS].find({"_id": {"$in": wanted[start : start + IN_BATCH]}}, {"d": 1}):
            out[row["_id"]] = row["d"]
    return out


def records(db: Db, slots: Mapping[str, str], projection: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The records of these slot ids (each naming its pack) that exist, projected as
    MongoDB would (``{"d": 0}``, or an inclusion of fields)."""
    found = fetch(db, slots.values())
    exclusion = not any(value for key, value in (projection or {}).items() if key != "_id")
    body = not projection or bool(projection.get("d", exclusion))  # documents are decoded only if asked for
    for sid, pid in slots.items():
        pack = found.get(pid)
        i = int(sid.rpartition(":")[2]) - first_slot(pid)
        if pack is not None and 0 <= i < pack.row["n"]:
            yield _project(pack.record(i, body), projection)


def _project(rec: dict[str, Any], projection: Mapping[str, Any] | None) -> dict[str, Any]:
    if not projection:
        return rec
    if not any(value for key, value in projection.items() if key != "_id"):  # an exclusion
        return {k: value for k, value in rec.items() if projection.get(k, 1)}
    return {k: value for k, value in rec.items() if projection.get(k) or (k == "_id" and projection.get("_id", 1))}


def bodies(db: Db, slots: Mapping[tuple[ObjectId, int], str]) -> dict[tuple[ObjectId, int], dict[str, Any]]:
    """The documents of slots ``(branch id, seq)`` from their packs (``slots`` names
    each one's pack); a slot whose document is not there (reclaimed, or a pack not
    written) is left out."""
    found = fetch(db, slots.values())
    out = {}
    for (bid, seq), pid in slots.items():
        pack = found.get(pid)
        doc = None if pack is None else pack.doc(seq - first_slot(pid))
        if doc is not None:
            out[(bid, seq)] = doc
    return out


def blank(db: Db, recs: list[dict[str, Any]], t0: datetime) -> None:
    """gc's in-place update of packed records: each one's document goes, its mark is set."""
    by_pack: dict[str, dict[str, Any]] = {}
    for rec in recs:
        i = rec["s"] - first_slot(rec["p"])
        by_pack.setdefault(rec["p"], {}).update({f"d.{i}": None, f"g.{i}": t0})
    for pid, fields in by_pack.items():
        db[PACKS].update_one({"_id": pid}, {"$set": fields})
    forget(by_pack)


def all_records(db: Db, rows_filter: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every record of every pack (of those matching ``rows_filter``): for checks and tests."""
    coll = db[PACKS].with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    for raw in coll.find(rows_filter or {}):
        pack = Pack(raw)
        for i in range(pack.row["n"]):
            yield pack.record(i)
