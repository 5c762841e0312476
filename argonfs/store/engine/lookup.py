"""Looking up keys in a snapshot: the newest visible record of each key through a
chain of layers (with what a process has learnt of hot keys kept for good), every
record of one key (its history), and the slot a time falls at.

Merged listings of a whole collection are in store/engine/reading.py, which stands on
``newest_in_layer`` for collection markers.  Blocking pymongo code.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson.objectid import ObjectId

from argonfs.store.db.mongo import Coll
from argonfs.store.engine import bulk
from argonfs.store.engine.commits import in_bounds, in_layer, visible
from argonfs.store.engine.versions import IN_BATCH, MARKER_KEY, NO_BODY, PUT, Chain, by_ids, slot_id, slot_record

HOT = 32
_HOT_KEYS = 4096


@dataclass
class _Known:
    """What a process learnt of one key in one layer, true for good: every record of
    the key at or below ``upto`` was read, ``newest`` is the newest of them visible at
    ``upto`` (None: none) and ``pending`` those not visible there yet (their transaction
    may commit above ``upto``).  True for good because slots at or below an observed slot
    never change (stability)."""

    upto: int
    newest: dict[str, Any] | None
    pending: list[dict[str, Any]]


_KNOWN: OrderedDict[tuple[str, ObjectId, str, str], _Known] = OrderedDict()
_KNOWN_LOCK = threading.Lock()


def _learn(
    versions: Coll, bid: ObjectId, limit: int | None, collection: str, key: str, recs: list[dict[str, Any]], before: _Known | None
) -> dict[str, Any] | None:
    """The newest record of ``key`` visible at ``limit`` among what ``before`` knew and
    ``recs`` (the key's records above ``before.upto``, or all of them); remembers the
    answer for a key with many records, so its next lookup reads only newer slots."""
    candidates = list(recs) if before is None else [*recs, *before.pending, *([before.newest] if before.newest else [])]

    def newest_at(at: int | None) -> dict[str, Any] | None:
        found = None
        for rec in candidates:
            if in_layer(versions, rec, at) and (found is None or rec["s"] > found["s"]):
                found = rec
        return found

    answer = newest_at(limit)
    if before is None and len(recs) < HOT:
        return answer
    # with no limit, the key's newest slot read is the bound: every slot below an
    # observed one exists and never changes, so the query saw every record of the key there
    upto = max(limit if limit is not None else max([r["s"] for r in candidates], default=0), before.upto if before else 0)
    known = _Known(upto, newest_at(upto), [r for r in candidates if r["s"] <= upto and not visible(versions, r, upto)])
    with _KNOWN_LOCK:
        ident = (versions.database.name, bid, collection, key)
        _KNOWN[ident] = known
        _KNOWN.move_to_end(ident)
        while len(_KNOWN) > _HOT_KEYS:
            _KNOWN.popitem(last=False)
    return answer


def newest_in_layer(versions: Coll, bid: ObjectId, limit: int | None, collection: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The newest record (without its body) of each key in one layer.

    One query per layer, each an equality on the branch id: servers that do not plan
    an ``$or`` over layers (or an ``$in`` on the leading index field) with the index
    would scan the whole collection.  The newest is picked here, not by a server sort.
    A key seen with many records (a document rewritten in a loop) is read instead by a
    query of its own for the slots above what this process already knows of it
    (``_Known``), which the index bounds: equality on (b, c, k) plus a range on s."""
    newest: dict[str, dict[str, Any]] = {}
    cold = []
    for key in keys:
        known = _KNOWN.get((versions.database.name, bid, collection, key))
        if known is None or (limit is not None and limit < known.upto):
            cold.append(key)
            continue
        fresh = list(versions.find({"b": bid, "c": collection, "k": key, "s": {"$gt": known.upto}}, NO_BODY))
        found = _learn(versions, bid, limit, collection, key, fresh, known)
        if found is not None:
            newest[key] = found
    for start in range(0, len(cold), IN_BATCH):
        part = cold[start : start + IN_BATCH]
        q = {"b": bid, "c": collection, "k": part[0] if len(part) == 1 else {"$in": part}}
        by_key: dict[str, list[dict[str, Any]]] = {}
        for rec in versions.find(q, NO_BODY):
            by_key.setdefault(rec["k"], []).append(rec)
        for key, recs in by_key.items():
            found = _learn(versions, bid, limit, collection, key, recs, None)
            if found is not None:
                newest[key] = found
    stems = [k for k in keys if k != MARKER_KEY]
    for listing in bulk.committed(versions, bid, limit, collection) if stems else ():
        for stem, e in bulk.lookup(versions.database, listing, stems).items():
            old = newest.get(stem)
            if in_bounds(rec := bulk.as_record(e, collection), limit) and (old is None or e.seq > old["s"]):
                newest[stem] = rec
    return newest


def lookup_many(versions: Coll, chain: Chain, collection: str, stems: list[str], *, bodies: bool = True) -> dict[str, dict[str, Any]]:
    """The visible record (a put; deletes and hidden records are left out) of each stem.

    Layers are read nearest first, and only for the stems no nearer layer decided, so
    a lookup costs one query per layer it has to reach (plus one for bodies)."""
    pending = set(stems)
    found: dict[str, dict[str, Any]] = {}
    for bid, limit in chain:
        if not pending:
            break
        newest = newest_in_layer(versions, bid, limit, collection, [*sorted(pending), MARKER_KEY])
        marker = newest.get(MARKER_KEY)
        for stem in list(pending):
            rec = newest.get(stem)
            if rec is not None and (marker is None or rec["s"] > marker["s"]):
                if rec["op"] == PUT:
                    found[stem] = rec
                pending.discard(stem)
        if marker is not None:
            break  # a collection marker hides everything older
    if bodies and found:
        full = {r["_id"]: r for r in by_ids(versions, [r["_id"] for r in found.values()])}
        found = {stem: full[rec["_id"]] for stem, rec in found.items()}
    return found


def slots_desc(versions: Coll, bid: ObjectId, top: int, batch: int = 100, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """A branch's records from slot ``top`` down to 1, without bodies, as a view of the
    branch at seq ``limit`` (default: ``top``) sees them.

    Slots are dense, so the newest records are the highest slot numbers: fetched by
    ``_id`` a batch at a time, whatever the length of the history (a sort by seq would
    read the whole branch on servers that do not stream sorted index scans)."""
    limit = top if limit is None else limit
    while top > 0:
        low = max(0, top - batch)
        ids = [slot_id(bid, s) for s in range(top, low, -1)]
        found = {r["s"]: r for r in by_ids(versions, ids, NO_BODY)}
        for s in range(top, low, -1):
            if s in found and visible(versions, found[s], limit):
                yield found[s]
        top = low


def key_history(versions: Coll, bid: ObjectId, limit: int | None, collection: str, key: str | None) -> list[dict[str, Any]]:
    """The records of one document (``key``) or of a whole collection in one layer, newest
    first, without bodies: an index scan on (b, c[, k]), ordered here."""
    q: dict[str, Any] = {"b": bid, "c": collection}
    if key is not None:
        q["k"] = {"$in": [key, MARKER_KEY]}  # the collection's markers touch the document too
    recs = [r for r in versions.find(q, NO_BODY) if in_layer(versions, r, limit)]
    for listing in bulk.committed(versions, bid, limit, collection):
        entries = bulk.lookup(versions.database, listing, [key]).values() if key is not None else bulk.iter_entries(versions.database, listing)
        recs += [rec for e in entries if in_bounds(rec := bulk.as_record(e, collection, listing), limit)]
    recs.sort(key=lambda r: r["s"], reverse=True)
    return recs


def seq_at(versions: Coll, bid: ObjectId, head: int, when: datetime) -> int:
    """The newest slot of a branch written at or before ``when`` (0: none), by binary
    search over the dense slots: O(log n) point lookups.  Slot times follow the order
    in which writers took their slots, to within the clock skew between writers."""
    lo, hi = 0, head  # invariant: slot lo is at or before `when` (0 stands for "before all"); slots above hi are after
    while lo < hi:
        mid = (lo + hi + 1) // 2
        rec = slot_record(versions, bid, mid, {"t": 1})
        if rec is not None and rec["t"] <= when:
            lo = mid
        else:
            hi = mid - 1
    return lo
