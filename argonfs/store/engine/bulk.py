"""Bulk listings: how readers find, by name, the records of a bulk write.

A bulk write (an import) appends its records without an entry each in the key index
(commits.append_bulk): on SecantusDB any secondary index doubles the cost of an insert.
What the index would give for them, the newest record of each name, the writer stores
once, before its commit record, as the transaction's *bulk listing*: its entries sorted
by name, in the chunk format of listing checkpoints (store/engine/checkpoints.py), and a header
naming the chunks, the collection and the slots the records took.

A reader of a layer ``(branch, limit)`` takes the bulk listings of the branch whose
transaction committed at or below ``limit`` and reads them beside the key index: a
lookup finds a name in one chunk per listing, a layer's stream merges the listings'
entries with the index's records by name.  A listing is written before its commit
record, so a reader that sees the commit finds the listing; one whose transaction never
committed is never read.  Blocking pymongo code.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson.binary import Binary
from bson.objectid import ObjectId
from pymongo import ASCENDING

from argonfs.errors import Corrupt
from argonfs.store.db.mongo import Coll, Db
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine.commits import visible
from argonfs.store.engine.versions import PUT, Entry, ranges, slot_id

HEADS = "bulk_listings"
CHUNKS = "bulk_chunks"


@dataclass(frozen=True)
class BulkListing:
    """The header of one transaction's bulk listing of one collection."""

    txn: str
    collection: str
    #: the first and last slot its records took (its range records included)
    lo: int
    hi: int
    count: int
    #: the first name of each chunk, in order
    firsts: tuple[str, ...]
    #: its last name (None in listings written before argonfs recorded it)
    last: str | None = None

    def chunk_id(self, i: int) -> str:
        return f"{self.txn}:{i}:{self.collection}"


def create_indexes(db: Db) -> None:
    db[HEADS].create_index([("b", ASCENDING)], name="b")


def write(db: Db, bid: ObjectId, txn: str, collection: str, builder: cp.Builder, lo: int, hi: int) -> None:
    """Store a transaction's entries (collected sorted by name, one per name) as its bulk
    listing: chunks first, then the header.  Must complete before the transaction's
    commit."""
    firsts, chunks = builder.sealed()
    header = BulkListing(txn, collection, lo, hi, builder.count, tuple(firsts), builder.last)
    rows = [{"_id": header.chunk_id(i), "e": Binary(data)} for i, data in enumerate(chunks)]
    for start in range(0, len(rows), 64):
        cp.insert_absent(db, CHUNKS, rows[start : start + 64])
    row = {"_id": f"{txn}:{collection}", "b": bid, "c": collection, "x": txn, "lo": lo, "hi": hi, "n": builder.count, "f": firsts, "l": builder.last}
    cp.insert_absent(db, HEADS, [{**row, "t": datetime.now(UTC).replace(tzinfo=None)}])


#: (database, branch id) -> (the highest limit the cached headers are complete for, headers)
_HEADERS: dict[tuple[str, ObjectId], tuple[int, list[dict[str, Any]]]] = {}
_LOCK = threading.Lock()


def committed(versions: Coll, bid: ObjectId, limit: int | None, collection: str) -> list[BulkListing]:
    """The bulk listings of a branch's collection whose transaction is visible at
    ``limit``.  A header is written before its commit, so a query made once slot
    ``limit`` exists finds every header committed at or below it: the answer is cached
    for every limit up to that one (a pinned layer costs one query per process)."""
    key = (versions.database.name, bid)
    cached = _HEADERS.get(key)
    if cached is None or limit is None or limit > cached[0]:
        rows = list(versions.database[HEADS].find({"b": bid}, {"t": 0}))
        if limit is not None:
            with _LOCK:
                _HEADERS[key] = (max(limit, cached[0] if cached else 0), rows)
    else:
        rows = cached[1]
    return [
        BulkListing(row["x"], row["c"], row["lo"], row["hi"], row["n"], tuple(row["f"]), row.get("l"))
        for row in rows
        if row["c"] == collection and visible(versions, {"b": bid, "x": row["x"]}, limit)
    ]


def in_flight(versions: Coll, bid: ObjectId, collection: str, limit: int) -> set[str]:
    """Bulk transactions of a collection with slots at or below ``limit`` that are not
    visible there: a checkpoint at ``limit`` must name them (Checkpoint.pending), as it
    names the transactions whose records its listing passed."""
    return {r["x"] for r in ranges(versions, bid) if r["rc"] == collection and r["s"] <= limit and not visible(versions, {"b": bid, "x": r["x"]}, limit)}


_CACHE: OrderedDict[tuple[str, str], tuple[list[str], list[Entry]]] = OrderedDict()
_CACHED_CHUNKS = 16
_FETCH = 8


def _chunk(db: Db, listing: BulkListing, i: int) -> tuple[list[str], list[Entry]]:
    """One chunk's names and entries, decoded once per process (a few recently used)."""
    key = (db.name, listing.chunk_id(i))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    row = db[CHUNKS].find_one({"_id": listing.chunk_id(i)})
    if row is None:
        raise Corrupt(f"bulk listing {listing.txn}/{listing.collection} is missing chunk {i}")
    entries = cp.decode(row["e"], listing.chunk_id(i))
    value = ([e.stem for e in entries], entries)
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHED_CHUNKS:
            _CACHE.popitem(last=False)
    return value


def lookup(db: Db, listing: BulkListing, stems: Iterable[str]) -> dict[str, Entry]:
    """The entries of these names in a listing (those it has): one chunk each, none for
    a name outside the listing's first and last names."""
    found = {}
    for stem in stems:
        if listing.last is not None and stem > listing.last:
            continue
        i = bisect.bisect_right(listing.firsts, stem) - 1
        if i < 0:
            continue
        names, entries = _chunk(db, listing, i)
        j = bisect.bisect_left(names, stem)
        if j < len(names) and names[j] == stem:
            found[stem] = entries[j]
    return found


def iter_entries(db: Db, listing: BulkListing, after: str = "") -> Iterator[Entry]:
    """A listing's entries in name order, those after ``after`` only; a few chunks per
    round trip."""
    first = max(0, bisect.bisect_right(listing.firsts, after) - 1) if after else 0
    for start in range(first, len(listing.firsts), _FETCH):
        ids = [listing.chunk_id(i) for i in range(start, min(start + _FETCH, len(listing.firsts)))]
        found = {row["_id"]: row["e"] for row in db[CHUNKS].find({"_id": {"$in": ids}})}
        for cid in ids:
            if cid not in found:
                raise Corrupt(f"bulk listing {listing.txn}/{listing.collection} is missing chunk {cid}")
            for e in cp.decode(found[cid], cid):
                if e.stem > after:
                    yield e


def as_record(e: Entry, collection: str, listing: BulkListing | None = None) -> dict[str, Any]:
    """A bulk entry in the shape of a version record without its body (with the
    transaction of its ``listing``, when given)."""
    rec = {
        "_id": slot_id(e.branch_id, e.seq),
        "b": e.branch_id,
        "s": e.seq,
        "c": collection,
        "k": e.stem,
        "op": PUT,
        "z": e.size,
        "h": e.hash,
        "t": e.time,
        "a": e.author,
        "mt": e.mtime,
        "bulk": True,
    }
    if listing is not None:
        rec["x"] = listing.txn
    return rec
