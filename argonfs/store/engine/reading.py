"""Reading a snapshot through a chain: merged listings of a collection (from its
checkpoints, bulk listings and indexed records), and which layers a collection is visible
in.  Lookups of single keys, their history and the slot a time falls at are in
store/engine/lookup.py.

A *chain* is the list of ``(branch id, limit)`` layers a snapshot reads, nearest first:
the branch itself up to the snapshot's seq (``None``: whatever is newest), then its
parent up to the fork point, and so on.  The newest record of a key in the nearest
layer that has one wins.  A collection marker (``k == ""``, op ``drop`` or ``mkcol``)
is a barrier: it hides every older record of its collection in its layer and in every
deeper layer.  Blocking pymongo code.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING

from argonfs.store.db.mongo import Coll
from argonfs.store.engine import bulk
from argonfs.store.engine import checkpoints as cp
from argonfs.store.engine.commits import in_bounds, in_layer, visible
from argonfs.store.engine.lookup import newest_in_layer
from argonfs.store.engine.versions import MARKER_KEY, MKCOL, NO_BODY, PAGE, PUT, Bounds, Chain, Entry, by_ids, entry_of, slot_id


#: a key with at least this many records in a layer is looked up by slot range next time
def visible_layers(versions: Coll, chain: Chain, collection: str) -> tuple[list[Bounds], bool]:
    """Layers a listing of ``collection`` reads, as ``(bid, limit, floor)``, cut off at
    the nearest collection marker, and whether that marker is an ``mkcol`` (which makes
    the collection exist even with no documents).  One small query per layer."""
    layers: list[Bounds] = []
    for bid, limit in chain:
        marker = newest_in_layer(versions, bid, limit, collection, [MARKER_KEY]).get(MARKER_KEY)
        layers.append((bid, limit, marker["s"] if marker else None))
        if marker is not None:
            return layers, marker["op"] == MKCOL
    return layers, False


@dataclass
class Plan:
    """What a listing of one collection reads: record layers nearest first, and the
    checkpoint that stands for everything below the last of them (None: the layers go
    all the way down).  ``streamed`` counts the records the layers produced, which is
    how a listing decides that a new checkpoint would pay; ``pending`` collects the
    transactions whose records the nearest layer holds but cannot see yet, which a
    checkpoint of this listing must name (checkpoints.Checkpoint.pending)."""

    layers: list[Bounds]
    checkpoint: cp.Checkpoint | None
    created: bool
    streamed: int = 0
    pending: set[str] = field(default_factory=set)


def plan(versions: Coll, chain: Chain, collection: str) -> Plan:
    """The layers ``visible_layers`` gives, cut at the nearest layer that has a usable
    checkpoint: one in its bounds, at or above its marker, and none of whose pending
    transactions committed within the layer's bounds (their records below the
    checkpoint are in no checkpoint and below the slots read above it).  Layers must be
    pinned (a listing pins its view).  One more small query per layer reached."""
    layers, created = visible_layers(versions, chain, collection)
    db = versions.database
    for i, (bid, limit, floor) in enumerate(layers):
        if limit is None:
            break

        def usable(found: cp.Checkpoint, bid: ObjectId = bid, limit: int = limit) -> bool:
            return not any(visible(versions, {"b": bid, "x": txn}, limit) for txn in found.pending)

        found = cp.best(db, bid, collection, limit, floor, usable)
        if found is not None:
            pending = set(found.pending) if i == 0 else set()
            return Plan([*layers[:i], (bid, limit, found.seq)], found, created, pending=pending)
    return Plan(layers, None, created)


def exists(versions: Coll, p: Plan, collection: str, known: dict[tuple[Any, ...], int | None]) -> bool:
    """Whether a collection exists in a plan: created empty (``mkcol``), present in the
    checkpoint, or any record of a document in the layers.  A layer seen to hold records
    up to a limit holds them at every higher limit above the same floor (records are
    never removed, one visible at a slot stays visible above it, and a new marker gives
    a new floor), so ``known`` remembers the lowest limit each (branch, floor,
    collection) was seen populated at: checking a large layer costs a scan of it on
    servers that cannot stop a query early, and a branch that keeps being written would
    otherwise pay it at every new head."""
    if p.created or (p.checkpoint is not None and p.checkpoint.exists):
        return True
    for bid, limit, floor in p.layers:
        key = (bid, floor, collection)
        if key in known and _within(known[key], limit):
            return True
        if _has_documents(versions, bid, limit, floor, collection):
            if key not in known or _within(limit, known[key]):
                known[key] = limit
            return True
    return False


def _within(limit: int | None, bound: int | None) -> bool:
    """Whether slots up to ``limit`` are all at or below ``bound`` (None: the newest)."""
    return bound is None or (limit is not None and limit <= bound)


def _has_documents(versions: Coll, bid: ObjectId, limit: int | None, floor: int | None, collection: str) -> bool:
    if _small_range(limit, floor):
        assert limit is not None and floor is not None
        return next(_range_records(versions, bid, floor, limit, collection, "", bodies=False), None) is not None
    if next(_bulk_stream(versions, bid, limit, floor, collection, ""), None) is not None:
        return True
    q = {"b": bid, "c": collection, "k": {"$gt": MARKER_KEY}}
    with versions.find(q, {"_id": 0, "b": 1, "s": 1, "x": 1}, batch_size=PAGE) as cursor:
        return any(in_layer(versions, rec, limit, floor) for rec in cursor)


#: a layer's slots above a checkpoint are read by slot id (every collection's records)
#: rather than by the key index (every record of the collection in the branch) when
#: there are at most this many
RANGE_MAX = 8 * PAGE


def _small_range(limit: int | None, floor: int | None) -> bool:
    return limit is not None and floor is not None and limit - floor <= RANGE_MAX


def _range_records(
    versions: Coll, bid: ObjectId, floor: int, limit: int, collection: str, after: str, *, bodies: bool, pending: set[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The newest record of each key of one collection in slots ``(floor, limit]`` of a
    branch, in key order: the slots are read by id, PAGE per round trip."""
    newest: dict[str, dict[str, Any]] = {}
    for low in range(floor, limit, PAGE):
        ids = [slot_id(bid, s) for s in range(low + 1, min(low + PAGE, limit) + 1)]
        for rec in by_ids(versions, ids, None if bodies else NO_BODY):
            k = rec["k"]
            if rec["c"] != collection or k <= after or not _sees(versions, rec, limit, floor, pending):
                continue
            old = newest.get(k)
            if old is None or rec["s"] > old["s"]:
                newest[k] = rec
    for k in sorted(newest):
        yield newest[k]


def _layer_stream(
    versions: Coll, bid: ObjectId, limit: int | None, floor: int | None, collection: str, after: str, bodies: bool = False, pending: set[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The newest record of each key of one layer, in key order.

    One cursor for the whole layer, fetched PAGE records per round trip: re-querying
    per page would cost a sort of the rest of the collection per page on servers that
    do not push a limit through their sort.  A few slots above a checkpoint are read by
    slot id instead."""
    if _small_range(limit, floor):
        assert limit is not None and floor is not None
        yield from _range_records(versions, bid, floor, limit, collection, after, bodies=bodies, pending=pending)
        return
    yield from _newer(
        _indexed_stream(versions, bid, limit, floor, collection, after, bodies, pending), _bulk_stream(versions, bid, limit, floor, collection, after)
    )


def _indexed_stream(
    versions: Coll, bid: ObjectId, limit: int | None, floor: int | None, collection: str, after: str, bodies: bool, pending: set[str] | None
) -> Iterator[dict[str, Any]]:
    q = {"b": bid, "c": collection, "k": {"$gt": after}}
    cursor = versions.find(q, None if bodies else NO_BODY, batch_size=PAGE).sort([("k", ASCENDING), ("s", DESCENDING)])
    try:
        prev = None
        for rec in cursor:
            if rec["k"] != prev and _sees(versions, rec, limit, floor, pending):
                prev = rec["k"]
                yield rec
    finally:
        cursor.close()


def _bulk_stream(versions: Coll, bid: ObjectId, limit: int | None, floor: int | None, collection: str, after: str) -> Iterator[dict[str, Any]]:
    """The newest entry of each name in a layer's bulk listings (store/engine/bulk.py), as
    records without bodies, in name order."""
    streams: list[Iterator[dict[str, Any]]] = []
    for listing in bulk.committed(versions, bid, limit, collection):
        if floor is None or listing.hi > floor:
            entries = bulk.iter_entries(versions.database, listing, after)
            streams.append(bulk.as_record(e, collection) for e in entries if in_bounds({"s": e.seq}, limit, floor))
    while len(streams) > 1:
        streams.append(_newer(streams.pop(0), streams.pop(0)))
    yield from streams[0] if streams else ()


def _newer(a: Iterator[dict[str, Any]], b: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Two streams of one layer, each one record per key in key order, as one: of a key
    in both, the record in the higher slot."""
    x, y = next(a, None), next(b, None)
    while x is not None and y is not None:
        if x["k"] < y["k"]:
            yield x
            x = next(a, None)
        elif y["k"] < x["k"]:
            yield y
            y = next(b, None)
        else:
            yield x if x["s"] > y["s"] else y
            x, y = next(a, None), next(b, None)
    if x is not None:
        yield x
        yield from a
    if y is not None:
        yield y
        yield from b


def _sees(versions: Coll, rec: dict[str, Any], limit: int | None, floor: int | None, pending: set[str] | None) -> bool:
    """``in_layer``, noting in ``pending`` the transactions of records in the bounds
    that are not visible yet."""
    if not in_bounds(rec, limit, floor):
        return False
    if visible(versions, rec, limit):
        return True
    if pending is not None:
        pending.add(rec["x"])
    return False


def iter_entries(versions: Coll, p: Plan, collection: str, after: str = "") -> Iterator[Entry]:
    """Merge the plan's layers and checkpoint in key order; the nearest layer's record
    of a key wins, and the checkpoint comes last.  The layers above a checkpoint hold
    what was written since it, normally far fewer than it lists: they are merged first
    and laid over the checkpoint's entries with one comparison per entry."""
    streams: list[Iterator[Any]] = [
        _counted(p, _layer_stream(versions, bid, limit, floor, collection, after, pending=p.pending if depth == 0 else None))
        for depth, (bid, limit, floor) in enumerate(p.layers)
        if limit is None or floor is None or limit > floor
    ]
    if p.checkpoint is None:
        yield from (entry_of(rec) for rec in _merge(streams) if rec["op"] == PUT)
        return
    delta = [(rec["k"], entry_of(rec) if rec["op"] == PUT else None) for rec in _merge(streams)]
    yield from overlay(cp.iter_entries(versions.database, p.checkpoint, after), delta)


def entries_named(versions: Coll, chain: Chain, collection: str, stems: list[str]) -> dict[str, Entry]:
    """The live entries of these names in a pinned chain's listing (those it has),
    reading of its checkpoint only the chunks the names fall in; the layers above the
    checkpoint (normally a few records, or the whole of the layers when there is no
    checkpoint) are read as a listing reads them."""
    p = plan(versions, chain, collection)
    wanted = set(stems)
    streams: list[Iterator[Any]] = [
        (rec for rec in _layer_stream(versions, bid, limit, floor, collection, "") if rec["k"] in wanted)
        for bid, limit, floor in p.layers
        if limit is None or floor is None or limit > floor
    ]
    delta = {rec["k"]: rec for rec in _merge(streams)}
    found = {} if p.checkpoint is None else cp.lookup(versions.database, p.checkpoint, (k for k in stems if k not in delta))
    for k, rec in delta.items():
        if rec["op"] == PUT:
            found[k] = entry_of(rec)
    return found


def _counted(p: Plan, stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for rec in stream:
        p.streamed += 1
        yield rec


def _merge(streams: list[Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Sorted streams of records as one, the first stream that has a key deciding it."""
    if not streams:
        return
    if len(streams) == 1:
        yield from streams[0]
        return
    heap: list[tuple[str, int, dict[str, Any]]] = []
    for depth, stream in enumerate(streams):
        item = next(stream, None)
        if item is not None:
            heap.append((item["k"], depth, item))
    heapq.heapify(heap)
    while heap:
        key, _, best = heap[0]  # heap order (key, depth): the nearest layer's record comes first
        while heap and heap[0][0] == key:
            _, depth, _ = heapq.heappop(heap)
            nxt = next(streams[depth], None)
            if nxt is not None:
                heapq.heappush(heap, (nxt["k"], depth, nxt))
        yield best


def overlay(listing: Iterator[Entry], delta: list[tuple[str, Entry | None]]) -> Iterator[Entry]:
    """A listing overlaid with newer entries sorted by name (None removes the name):
    one comparison per listed entry, for a delta much smaller than the listing."""
    i, n = 0, len(delta)
    for e in listing:
        while i < n and delta[i][0] < e.stem:
            if (new := delta[i][1]) is not None:
                yield new
            i += 1
        if i < n and delta[i][0] == e.stem:
            if (new := delta[i][1]) is not None:
                yield new
            i += 1
        else:
            yield e
    yield from (new for _, new in delta[i:] if new is not None)


def iter_records(versions: Coll, layers: list[Bounds], collection: str, after: str = "", *, bodies: bool = False) -> Iterator[dict[str, Any]]:
    """The live records of layers with no checkpoint below them, with their documents
    when ``bodies`` (one scan instead of a listing and a fetch per page)."""
    streams: list[Iterator[Any]] = [_layer_stream(versions, bid, limit, floor, collection, after, bodies) for bid, limit, floor in layers]
    live = (best for best in _merge(streams) if best["op"] == PUT)
    if not bodies:
        yield from live
        return
    while page := list(islice(live, PAGE)):
        missing = [rec["_id"] for rec in page if "d" not in rec and rec.get("bulk")]  # from a bulk listing
        full = {rec["_id"]: rec for rec in by_ids(versions, missing)} if missing else {}
        yield from (full.get(rec["_id"], rec) for rec in page)
