"""Version records: appending them densely, and reading a snapshot through a chain.

A *chain* is the list of ``(branch id, limit)`` layers a snapshot reads, nearest first:
the branch itself up to the snapshot's seq (``None``: whatever is newest), then its
parent up to the fork point, and so on.  The newest record of a key in the nearest
layer that has one wins.  A collection marker (``k == ""``, op ``drop`` or ``mkcol``)
is a barrier: it hides every older record of its collection in its layer and in every
deeper layer.

Blocking pymongo code; docs/architecture.md explains why it is correct without
transactions.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from argonfs.errors import Conflict

log = logging.getLogger(__name__)

Layer = tuple[ObjectId, "int | None"]
Chain = Sequence[Layer]

PUT, DELETE, DROP, MKCOL = "put", "del", "drop", "mkcol"
MARKER_KEY = ""
PAGE = 1000
_MAX_ATTEMPTS = 1000
_META = {"d": 0}


@dataclass(frozen=True)
class Entry:
    """What a listing knows of a live document without its body."""

    stem: str
    size: int
    hash: str
    seq: int
    branch_id: ObjectId
    time: datetime
    author: str


def entry_of(rec: dict[str, Any]) -> Entry:
    return Entry(rec["k"], rec["z"], rec["h"], rec["s"], rec["b"], rec["t"], rec["a"])


def create_indexes(versions: Collection) -> None:
    # The slot's uniqueness comes from _id ("<branch id>:<seq>"), so no second unique index.
    versions.create_index(
        [("b", ASCENDING), ("c", ASCENDING), ("k", ASCENDING), ("s", DESCENDING)], name="key"
    )


def slot_id(bid: ObjectId, seq: int) -> str:
    return f"{bid}:{seq}"


def _filled(versions: Collection, bid: ObjectId, seqs: list[int]) -> set[int]:
    ids = [slot_id(bid, s) for s in seqs]
    return {int(r["_id"].rsplit(":", 1)[1]) for r in versions.find({"_id": {"$in": ids}}, {"_id": 1})}


def head(versions: Collection, bid: ObjectId, known: int = 0) -> int:
    """The highest occupied slot of a branch (0 for none), at least ``known``.

    Slots are dense, so "slot x is filled" holds for every x up to the head and for
    none above it: the head is found by probing a few slots per round trip (powers of
    two above ``known``, then evenly spaced points), a handful of _id point lookups
    whatever the branch's length, and one round trip when ``known`` is current.
    """
    lo = known
    while True:
        probes = [lo + 2**i for i in range(24)]
        found = _filled(versions, bid, probes)
        if not found:
            return lo
        lo = max(found)
        missing = [p for p in probes if p > lo]
        if missing:
            hi = missing[0]
            break
    while hi - lo > 1:
        step = max(1, (hi - lo) // 64)
        probes = list(range(lo + 1, hi, step))
        found = _filled(versions, bid, probes)
        if found:
            lo = max(found)
        above = [p for p in probes if p > lo]
        hi = above[0] if above else hi
    return lo


def _layer_filter(bid: ObjectId, limit: int | None, floor: int | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"b": bid}
    bounds: dict[str, int] = {}
    if limit is not None:
        bounds["$lte"] = limit
    if floor is not None:
        bounds["$gt"] = floor
    if bounds:
        q["s"] = bounds
    return q


def append(versions: Collection, bid: ObjectId, records: list[dict[str, Any]], guess: int | None = None) -> int:
    """Append records to a branch in consecutive free slots; return the last seq.

    Optimistic: take head+1.., insert in order, and on a duplicate slot re-read the
    head and place what is left after it.  The unique (b, s) index makes two writers
    never share a slot; ordered inserts make a slot be filled only after the one below
    it, so the sequence stays dense.
    """
    pending = records
    base = guess if guess is not None else head(versions, bid)
    known = base
    for attempt in range(_MAX_ATTEMPTS):
        for i, rec in enumerate(pending):
            rec["b"] = bid
            rec["s"] = base + 1 + i
            rec["_id"] = slot_id(bid, rec["s"])
        try:
            if len(pending) == 1:
                versions.insert_one(pending[0])
            else:
                versions.insert_many(pending, ordered=True)
            return pending[-1]["s"]
        except DuplicateKeyError as exc:
            _check_slot_collision(exc.details or {})
            done = 0
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != 11000 for e in errors):
                raise
            _check_slot_collision(errors[0])
            done = exc.details.get("nInserted", errors[0]["index"])
        log.debug("slot collision on branch %s above %d: %d placed, %d left", bid, base, done, len(pending) - done)
        pending = pending[done:]
        known = base + done
        if attempt:
            time.sleep(random.uniform(0, min(0.05, 0.001 * attempt)))
        base = head(versions, bid, known)
    raise Conflict(f"could not find a free slot after {_MAX_ATTEMPTS} attempts (too much contention)")


def _check_slot_collision(error: dict[str, Any]) -> None:
    """Only a duplicate ``_id`` means another writer took the slot; any other unique
    index is not ours (e.g. a database written by another format) and retrying would
    never succeed."""
    pattern = error.get("keyPattern")
    if pattern is not None and list(pattern) != ["_id"]:
        raise Conflict(f"unexpected unique index {pattern} on the versions collection; is this database an argonfs repository of this format?")


def _newest_per_layer_and_key(
    versions: Collection, chain: Chain, collection: str, keys: list[str], projection: dict[str, int] | None
) -> dict[tuple[ObjectId, str], dict[str, Any]]:
    """One round trip: the newest record of each key in each layer."""
    match = {
        "c": collection,
        "k": keys[0] if len(keys) == 1 else {"$in": keys},
        "$or": [_layer_filter(bid, limit) for bid, limit in chain],
    }
    if len(chain) == 1:
        match.update(match.pop("$or")[0])
    pipeline: list[dict[str, Any]] = [{"$match": match}, {"$sort": {"s": -1}}]
    if projection:
        pipeline.append({"$project": projection})
    pipeline.append({"$group": {"_id": {"b": "$b", "k": "$k"}, "r": {"$first": "$$ROOT"}}})
    return {(row["_id"]["b"], row["_id"]["k"]): row["r"] for row in versions.aggregate(pipeline)}


def lookup_many(
    versions: Collection, chain: Chain, collection: str, stems: list[str], *, bodies: bool = True
) -> dict[str, dict[str, Any]]:
    """The visible record (a put; deletes and hidden records are left out) of each stem."""
    newest = _newest_per_layer_and_key(versions, chain, collection, [*stems, MARKER_KEY], None if bodies else _META)
    found: dict[str, dict[str, Any]] = {}
    for stem in stems:
        for bid, _limit in chain:
            rec = newest.get((bid, stem))
            marker = newest.get((bid, MARKER_KEY))
            if rec is not None and (marker is None or rec["s"] > marker["s"]):
                if rec["op"] == PUT:
                    found[stem] = rec
                break
            if marker is not None:
                break
    return found


def markers(versions: Collection, chain: Chain, collection: str) -> dict[ObjectId, dict[str, Any]]:
    """The newest collection marker of each layer."""
    rows = _newest_per_layer_and_key(versions, chain, collection, [MARKER_KEY], None)
    return {bid: rec for (bid, _k), rec in rows.items()}


def visible_layers(
    versions: Collection, chain: Chain, collection: str
) -> tuple[list[tuple[ObjectId, int | None, int | None]], bool]:
    """Layers a listing of ``collection`` reads, as ``(bid, limit, floor)``, and whether
    the collection exists there.  Layers beyond the nearest marker are cut off."""
    marks = markers(versions, chain, collection)
    layers: list[tuple[ObjectId, int | None, int | None]] = []
    exists = False
    for bid, limit in chain:
        marker = marks.get(bid)
        floor = marker["s"] if marker else None
        layers.append((bid, limit, floor))
        exists = exists or _has_documents(versions, bid, limit, floor, collection)
        if marker is not None:
            return layers, exists or marker["op"] == MKCOL
    return layers, exists


def _has_documents(versions: Collection, bid: ObjectId, limit: int | None, floor: int | None, collection: str) -> bool:
    q = _layer_filter(bid, limit, floor)
    q.update({"c": collection, "k": {"$gt": MARKER_KEY}})
    return versions.find_one(q, {"_id": 1}) is not None


def _layer_stream(
    versions: Collection, bid: ObjectId, limit: int | None, floor: int | None, collection: str, after: str
) -> Iterator[dict[str, Any]]:
    """The newest record of each key of one layer, in key order.

    One cursor for the whole layer, fetched PAGE records per round trip: re-querying
    per page would cost a sort of the rest of the collection per page on servers that
    do not push a limit through their sort."""
    q = _layer_filter(bid, limit, floor)
    q.update({"c": collection, "k": {"$gt": after}})
    cursor = versions.find(q, _META, batch_size=PAGE).sort([("k", ASCENDING), ("s", DESCENDING)])
    try:
        prev = None
        for rec in cursor:
            if rec["k"] != prev:
                prev = rec["k"]
                yield rec
    finally:
        cursor.close()


def iter_entries(versions: Collection, layers: list[tuple[ObjectId, int | None, int | None]], collection: str, after: str = "") -> Iterator[Entry]:
    """Merge the layers' streams in key order; the nearest layer's record of a key wins."""
    streams = [_layer_stream(versions, bid, limit, floor, collection, after) for bid, limit, floor in layers]
    heap: list[tuple[str, int, dict[str, Any]]] = []
    for depth, stream in enumerate(streams):
        rec = next(stream, None)
        if rec is not None:
            heap.append((rec["k"], depth, rec))
    heapq.heapify(heap)
    while heap:
        key, _, best = heap[0]  # heap order (key, depth): the nearest layer's record comes first
        while heap and heap[0][0] == key:
            _, depth, _ = heapq.heappop(heap)
            nxt = next(streams[depth], None)
            if nxt is not None:
                heapq.heappush(heap, (nxt["k"], depth, nxt))
        if best["op"] == PUT:
            yield entry_of(best)
