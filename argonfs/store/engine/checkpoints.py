"""Checkpoints of listings: the whole listing of a collection at one snapshot, stored once.

A snapshot ``(branch, seq)`` never changes (docs/architecture.md, "The dense per-branch
sequence"), so neither does its listing of a collection.  A *checkpoint* stores that
listing (name, size, hash, version slot, time, author, mtime of every live document,
sorted by name) in chunks of ``CHUNK`` entries, compressed, so that a listing of 100,000
documents is about 50 reads of a few tens of KiB instead of 100,000 index entries.

A reader of ``(branch, limit)`` takes the newest checkpoint of the branch at a slot
``s <= limit`` and merges it with the records of the branch in ``(s, limit]``: the
checkpoint stands for everything at or below ``s`` in the branch and in all its
ancestors (docs/architecture.md, "Listing checkpoints").

Checkpoints are a cache of facts that never change, which is what makes writing them
easy to get right: whoever lists a snapshot may write its checkpoint, at any time, with
deterministic ids, and two processes writing the same one write the same bytes.  The
header is inserted after every chunk, so a reader that finds a header finds all of it;
a writer that dies part way leaves chunks no header names.  Blocking pymongo code.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from bson.binary import Binary
from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from argonfs.errors import Corrupt
from argonfs.store.db.mongo import Db
from argonfs.store.engine.versions import Entry, time_ns

HEADS = "checkpoints"
CHUNKS = "checkpoint_chunks"
#: entries per chunk: about 60 KiB of JSON, 15 to 25 KiB compressed
CHUNK = 2000
#: chunks fetched per round trip while streaming a listing
_FETCH = 8
_FORMAT = 1

_EPOCH = datetime(1970, 1, 1)

#: chunks this process has fetched and decoded (listings and lookups): what tests count
#: to check that a diff reads the chunks its names fall in, not the whole listing
chunks_read = 0


_INDEXED: set[tuple[int, str]] = set()


def create_indexes(db: Db) -> None:
    """Idempotent; also run by the first checkpoint a process writes, so a repository
    initialised before checkpoints existed gets the index without an upgrade."""
    db[HEADS].create_index([("b", ASCENDING), ("c", ASCENDING), ("s", DESCENDING)], name="bcs")
    _INDEXED.add((id(db.client), db.name))


@dataclass(frozen=True)
class Checkpoint:
    """The header of a checkpoint: where it stands and what its chunks hold."""

    branch_id: ObjectId
    collection: str
    seq: int
    count: int
    #: whether the collection existed at that snapshot (documents, or created empty)
    exists: bool
    #: the first name of each chunk, in order
    firsts: tuple[str, ...]
    #: transactions with records at or below ``seq`` that had not committed at ``seq``:
    #: a view that includes one of their commits cannot use this checkpoint
    pending: tuple[str, ...] = ()

    def chunk_id(self, i: int) -> str:
        return _chunk_id(self.branch_id, self.seq, i, self.collection)


def _head_id(bid: ObjectId, seq: int, collection: str) -> str:
    return f"{bid}:{seq}:{collection}"


def _chunk_id(bid: ObjectId, seq: int, i: int, collection: str) -> str:
    return f"{bid}:{seq}:{i}:{collection}"


def _of(row: dict[str, Any]) -> Checkpoint:
    return Checkpoint(row["b"], row["c"], row["s"], row["n"], row["e"], tuple(row["f"]), tuple(row.get("p", ())))


def best(db: Db, bid: ObjectId, collection: str, limit: int, floor: int | None, usable: Callable[[Checkpoint], bool]) -> Checkpoint | None:
    """The newest checkpoint of a branch's collection at a slot in ``[floor, limit]``
    (one at or above a collection marker already shows its effect) that ``usable``
    accepts.  One indexed query (equality on (b, c), a range on s), then the header."""
    q: dict[str, Any] = {"b": bid, "c": collection, "s": {"$lte": limit} if floor is None else {"$lte": limit, "$gte": floor}}
    rows = sorted(db[HEADS].find(q, {"f": 0}), key=lambda r: r["s"], reverse=True)
    for top in rows:
        if usable(_of({**top, "f": ()})):
            row = db[HEADS].find_one({"_id": top["_id"]})
            if row is not None:
                return _of(row)
    return None


def iter_entries(db: Db, cp: Checkpoint, after: str = "") -> Iterator[Entry]:
    """The checkpoint's entries in name order, those after ``after`` only; a few chunks
    per round trip."""
    first = 0
    if after:
        # the chunk holding the first name > after: the last chunk starting at or before it
        while first + 1 < len(cp.firsts) and cp.firsts[first + 1] <= after:
            first += 1
    chunks = db[CHUNKS]
    for start in range(first, len(cp.firsts), _FETCH):
        ids = [cp.chunk_id(i) for i in range(start, min(start + _FETCH, len(cp.firsts)))]
        found = {row["_id"]: row["e"] for row in chunks.find({"_id": {"$in": ids}})}
        for cid in ids:
            data = found.get(cid)
            if data is None:
                raise Corrupt(f"listing checkpoint {cid} is missing a chunk its header names")
            for e in decode(data, cid):
                if e.stem > after:
                    yield e


def lookup(db: Db, cp: Checkpoint, stems: Iterable[str]) -> dict[str, Entry]:
    """The checkpoint's entries of these names (those it lists): only the chunks the
    names fall in are fetched (a few per round trip), and only their entries built."""
    wanted: dict[int, set[str]] = {}
    for stem in stems:
        i = bisect.bisect_right(cp.firsts, stem) - 1
        if i >= 0:
            wanted.setdefault(i, set()).add(stem)
    order = sorted(wanted)
    found: dict[str, Entry] = {}
    for start in range(0, len(order), _FETCH):
        ids = {cp.chunk_id(i): wanted[i] for i in order[start : start + _FETCH]}
        rows = {row["_id"]: row["e"] for row in db[CHUNKS].find({"_id": {"$in": list(ids)}})}
        for cid, names in ids.items():
            data = rows.get(cid)
            if data is None:
                raise Corrupt(f"listing checkpoint {cid} is missing a chunk its header names")
            found.update((e.stem, e) for e in decode(data, cid, names))
    return found


def decode(data: bytes, where: str, only: set[str] | None = None) -> list[Entry]:
    """A chunk's entries (with ``only``: those of these names)."""
    global chunks_read
    chunks_read += 1
    try:
        body = orjson.loads(zlib.decompress(data))
        bids = [ObjectId(b) for b in body["b"]]
        authors = body["a"]
        times: dict[int, datetime] = {}  # a batch of writes shares a few milliseconds
        ms = timedelta(milliseconds=1)
        new = tuple.__new__  # an Entry without the generated __new__'s argument handling
        out = []
        rows = body["e"] if only is None else [row for row in body["e"] if row[0] in only]
        for k, z, h, bi, s, t, ai, mt in rows:
            when = times.get(t)
            if when is None:
                when = times[t] = _EPOCH + t * ms
            out.append(new(Entry, (k, z, h, s, bids[bi], when, authors[ai], mt)))
        return out
    except (zlib.error, orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise Corrupt(f"listing checkpoint chunk {where} does not decode ({exc})") from None


def _encode(entries: list[Entry]) -> bytes:
    bids: dict[ObjectId, int] = {}
    authors: dict[str, int] = {}
    rows = [
        [
            e.stem,
            e.size,
            e.hash,
            bids.setdefault(e.branch_id, len(bids)),
            e.seq,
            time_ns(e.time) // 1_000_000,
            authors.setdefault(e.author, len(authors)),
            e.mtime,
        ]
        for e in entries
    ]
    return zlib.compress(orjson.dumps({"v": _FORMAT, "b": [str(b) for b in bids], "a": list(authors), "e": rows}), 1)


class Builder:
    """Collects a listing, chunk by chunk, as it streams past (in name order), so that
    writing its checkpoint afterwards costs no second listing.  Memory: the compressed
    chunks, about 10 bytes per entry."""

    def __init__(self) -> None:
        self._pending: list[Entry] = []
        self._chunks: list[bytes] = []
        self._firsts: list[str] = []
        self.count = 0
        self.last: str | None = None  # the last name added

    def add(self, entry: Entry) -> None:
        self._pending.append(entry)
        self.count += 1
        self.last = entry.stem
        if len(self._pending) >= CHUNK:
            self._seal()

    def _seal(self) -> None:
        if self._pending:
            self._firsts.append(self._pending[0].stem)
            self._chunks.append(_encode(self._pending))
            self._pending = []

    def sealed(self) -> tuple[list[str], list[bytes]]:
        """The collected listing as chunks: their first names, and their bytes."""
        self._seal()
        return self._firsts, self._chunks

    def entries(self) -> Iterator[Entry]:
        """The collected listing again, decoded chunk by chunk."""
        self._seal()
        for i, data in enumerate(self._chunks):
            yield from decode(data, f"collected chunk {i}")

    def write(self, db: Db, bid: ObjectId, collection: str, seq: int, *, exists: bool, pending: Iterable[str] = ()) -> None:
        """Store the collected listing as the checkpoint of ``(bid, seq)``: chunks first,
        then the header that makes them visible.  Idempotent: an id already taken holds
        the same content (it is a function of the snapshot)."""
        self._seal()
        if (id(db.client), db.name) not in _INDEXED:
            create_indexes(db)
        chunks = [{"_id": _chunk_id(bid, seq, i, collection), "e": Binary(data)} for i, data in enumerate(self._chunks)]
        for start in range(0, len(chunks), 64):
            insert_absent(db, CHUNKS, chunks[start : start + 64])
        head = {
            "_id": _head_id(bid, seq, collection),
            "b": bid,
            "c": collection,
            "s": seq,
            "n": self.count,
            "e": exists or self.count > 0,
            "f": self._firsts,
            "p": sorted(pending),
            "t": datetime.now(UTC).replace(tzinfo=None),
        }
        insert_absent(db, HEADS, [head])


def insert_absent(db: Db, name: str, docs: list[dict[str, Any]]) -> None:
    if not docs:
        return
    try:
        db[name].insert_many(docs, ordered=False)
    except DuplicateKeyError:
        pass
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise
