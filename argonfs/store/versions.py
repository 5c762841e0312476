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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from argonfs.errors import Conflict
from argonfs.store.mongo import Coll

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
    #: the modification time a writer set explicitly (``touch -d``, ``rsync -a``), in ns
    #: since the epoch; None: the version's own time
    mtime: int | None = None

    @property
    def version(self) -> tuple[ObjectId, int]:
        """The version's slot: the same wherever it is seen, and its body never changes."""
        return (self.branch_id, self.seq)

    @property
    def mtime_ns(self) -> int:
        """The modification time shown for this version, in ns since the epoch."""
        return self.mtime if self.mtime is not None else time_ns(self.time)


_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def time_ns(t: datetime) -> int:
    """Nanoseconds since the epoch of a naive-UTC datetime from MongoDB."""
    return (t - _EPOCH) // _MICROSECOND * 1000


def entry_of(rec: dict[str, Any]) -> Entry:
    return Entry(rec["k"], rec["z"], rec["h"], rec["s"], rec["b"], rec["t"], rec["a"], rec.get("mt"))


def create_indexes(versions: Coll) -> None:
    # The slot's uniqueness comes from _id ("<branch id>:<seq>"), so no second unique index.
    versions.create_index([("b", ASCENDING), ("c", ASCENDING), ("k", ASCENDING), ("s", DESCENDING)], name="key")


def slot_id(bid: ObjectId, seq: int) -> str:
    return f"{bid}:{seq}"


def _filled(versions: Coll, bid: ObjectId, seqs: list[int]) -> set[int]:
    ids = [slot_id(bid, s) for s in seqs]
    return {int(r["_id"].rsplit(":", 1)[1]) for r in versions.find({"_id": {"$in": ids}}, {"_id": 1})}


def head(versions: Coll, bid: ObjectId, known: int = 0) -> int:
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


def _in_layer(versions: Coll, rec: dict[str, Any], limit: int | None, floor: int | None = None) -> bool:
    """Whether a record lies in a layer's seq bounds ``(floor, limit]`` and is visible
    there (see ``visible``).

    The bounds are checked here rather than sent to the server: a filter with ranges on
    two fields of the index (or an ``$in`` and a range) makes some servers (SecantusDB)
    give up the index and scan the whole collection, while equality on (b, c) and one
    condition on k always uses it.  What the client then skips is bounded by the
    parent's changes after the fork and the records a collection marker hides."""
    s = rec["s"]
    return (limit is None or s <= limit) and (floor is None or s > floor) and visible(versions, rec, limit)


#: The pseudo-collection of control records (commits, aborts, protection markers): no
#: user collection has an empty name.
COMMITS = ""
COMMIT = "commit"
#: written by ``argonfs gc`` for a transaction idle long enough: it can never commit after
ABORT = "abort"

#: Called with the head a writer observed, just before inserting above it; raises to
#: refuse the write.  Since an insert at ``base + 1`` succeeds only while ``base`` is the
#: head, what the guard reads about slots ``<= base`` holds at the moment of the write.
Guard = Callable[[int], None]

#: committed transactions: (database, branch id, txn id) -> the commit record's slot.
#: A commit never changes.
_COMMITTED: dict[tuple[str, ObjectId, str], int] = {}
#: transactions found uncommitted (in progress, or crashed): when, so that a listing
#: passing many of their versions asks at most once per PENDING_RECHECK seconds
_PENDING: dict[tuple[str, ObjectId, str], float] = {}
PENDING_RECHECK = 0.5


def visible(versions: Coll, rec: dict[str, Any], limit: int | None) -> bool:
    """A record written by a multi-record operation (merge, revert) carries its
    transaction id ``x``.  The operation commits by appending one *commit record*
    (collection ``COMMITS``, key = the id) after all of them, and a tagged record is
    visible exactly to views that include that commit record's slot.

    So a reader, bundle or fork sees all of the operation or none of it, and the answer
    never changes for a pinned view: a view pinned below the commit slot never sees the
    operation, one pinned at or above it was pinned after the commit (slots are dense).
    A crashed operation leaves tagged records nobody ever sees."""
    txn = rec.get("x")
    if txn is None:
        return True
    key = (versions.database.name, rec["b"], txn)
    slot = _COMMITTED.get(key)
    if slot is None:
        checked = _PENDING.get(key)
        if checked is not None and time.monotonic() - checked < PENDING_RECHECK:
            return False
        row = _commit_record(versions, rec["b"], txn)
        if row is None:
            _PENDING[key] = time.monotonic()
            return False
        _PENDING.pop(key, None)
        slot = _COMMITTED[key] = row["s"]
    return limit is None or slot <= limit


def control_records(versions: Coll, bid: ObjectId, key: str) -> list[dict[str, Any]]:
    """The control records (collection ``COMMITS``) of one key in a branch: one indexed
    query, equality on (b, c, k)."""
    return list(versions.find({"b": bid, "c": COMMITS, "k": key}, _META))


def _commit_record(versions: Coll, bid: ObjectId, txn: str) -> dict[str, Any] | None:
    return next((r for r in control_records(versions, bid, txn) if r["op"] == COMMIT), None)


def txn_state(versions: Coll, bid: ObjectId, txn: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(commit record, abort record) of a transaction, each None when absent."""
    recs = control_records(versions, bid, txn)
    return next((r for r in recs if r["op"] == COMMIT), None), next((r for r in recs if r["op"] == ABORT), None)


def _not_aborted(versions: Coll, bid: ObjectId, txn: str) -> None:
    if any(r["op"] == ABORT for r in control_records(versions, bid, txn)):
        raise Conflict(f"transaction {txn} was aborted by 'argonfs gc' after being idle too long; nothing of it is visible, run the operation again")


def append_atomic(
    versions: Coll, bid: ObjectId, records: list[dict[str, Any]], guess: int | None, txn: str, commit: dict[str, Any], guard: Guard | None = None
) -> int:
    """Append records that become visible together: tag them with ``txn``, append them
    (possibly interleaved with other writers' records), then append the commit record
    (``commit`` holds its op-independent fields: author, time, kind, message...).
    Returns the commit record's slot.  ``guard`` checks every append (see ``Guard``)."""
    for rec in records:
        rec["x"] = txn
        rec["xk"] = commit.get("kind")
    last = append(versions, bid, records, guess, guard)
    return append_commit(versions, bid, txn, commit, last, guard)


def append_commit(versions: Coll, bid: ObjectId, txn: str, commit: dict[str, Any], guess: int | None, guard: Guard | None = None) -> int:
    """Commit a transaction by appending its commit record; return its slot.

    Refused when ``argonfs gc`` aborted the transaction: gc appends an abort record and
    then looks for a commit below it, and the check here runs against the head the
    insert goes above, so of a commit and an abort the later one always sees the other."""

    def check(base: int) -> None:
        if guard is not None:
            guard(base)
        _not_aborted(versions, bid, txn)

    slot = append(versions, bid, [{**commit, "c": COMMITS, "k": txn, "op": COMMIT}], guess, check)
    note_commit(versions, bid, txn, slot)
    return slot


def note_commit(versions: Coll, bid: ObjectId, txn: str, slot: int) -> None:
    """Remember a commit this process made, so it sees its own operation at once."""
    key = (versions.database.name, bid, txn)
    _COMMITTED[key] = slot
    _PENDING.pop(key, None)


def append(versions: Coll, bid: ObjectId, records: list[dict[str, Any]], guess: int | None = None, guard: Guard | None = None) -> int:
    """Append records to a branch in consecutive free slots; return the last seq.

    Optimistic: take head+1.., insert in order, and on a duplicate slot re-read the
    head and place what is left after it.  The unique (b, s) index makes two writers
    never share a slot; ordered inserts make a slot be filled only after the one below
    it, so the sequence stays dense.  ``guard`` is called with the base before every
    insert attempt.
    """
    pending = records
    base = guess if guess is not None else head(versions, bid)
    known = base
    for attempt in range(_MAX_ATTEMPTS):
        if guard is not None:
            guard(base)
        for i, rec in enumerate(pending):
            rec["b"] = bid
            rec["s"] = base + 1 + i
            rec["_id"] = slot_id(bid, rec["s"])
        try:
            if len(pending) == 1:
                versions.insert_one(pending[0])
            else:
                versions.insert_many(pending, ordered=True)
            last: int = pending[-1]["s"]
            return last
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


def _check_slot_collision(error: Mapping[str, Any]) -> None:
    """Only a duplicate ``_id`` means another writer took the slot; any other unique
    index is not ours (e.g. a database written by another format) and retrying would
    never succeed."""
    pattern = error.get("keyPattern")
    if pattern is not None and list(pattern) != ["_id"]:
        raise Conflict(f"unexpected unique index {pattern} on the versions collection; is this database an argonfs repository of this format?")


def _newest_in_layer(versions: Coll, bid: ObjectId, limit: int | None, collection: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The newest record (without its body) of each key in one layer.

    One query per layer, each an equality on the branch id: servers that do not plan
    an ``$or`` over layers (or an ``$in`` on the leading index field) with the index
    would scan the whole collection.  The newest is picked here, not by a server sort."""
    q = {"b": bid, "c": collection, "k": keys[0] if len(keys) == 1 else {"$in": keys}}
    newest: dict[str, dict[str, Any]] = {}
    for rec in versions.find(q, _META):
        if not _in_layer(versions, rec, limit):
            continue
        old = newest.get(rec["k"])
        if old is None or rec["s"] > old["s"]:
            newest[rec["k"]] = rec
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
        newest = _newest_in_layer(versions, bid, limit, collection, [*sorted(pending), MARKER_KEY])
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
        full = {r["_id"]: r for r in versions.find({"_id": {"$in": [r["_id"] for r in found.values()]}})}
        found = {stem: full[rec["_id"]] for stem, rec in found.items()}
    return found


Bounds = tuple[ObjectId, "int | None", "int | None"]


def visible_layers(versions: Coll, chain: Chain, collection: str) -> tuple[list[Bounds], bool]:
    """Layers a listing of ``collection`` reads, as ``(bid, limit, floor)``, cut off at
    the nearest collection marker, and whether that marker is an ``mkcol`` (which makes
    the collection exist even with no documents).  One small query per layer."""
    layers: list[Bounds] = []
    for bid, limit in chain:
        marker = _newest_in_layer(versions, bid, limit, collection, [MARKER_KEY]).get(MARKER_KEY)
        layers.append((bid, limit, marker["s"] if marker else None))
        if marker is not None:
            return layers, marker["op"] == MKCOL
    return layers, False


def exists(versions: Coll, layers: list[Bounds], created: bool, collection: str, known: set[tuple[Any, ...]]) -> bool:
    """Whether a collection exists in the given layers: created empty (``mkcol``), or any
    record of a document in them.  A layer once seen to hold records always will (records
    are never removed, and new markers give new bounds), so ``known`` remembers those:
    checking a large layer costs a scan of it on servers that cannot stop a query early."""
    if created:
        return True
    for bounds in layers:
        key = (*bounds, collection)
        if key in known:
            return True
        if _has_documents(versions, *bounds, collection):
            known.add(key)
            return True
    return False


def _has_documents(versions: Coll, bid: ObjectId, limit: int | None, floor: int | None, collection: str) -> bool:
    q = {"b": bid, "c": collection, "k": {"$gt": MARKER_KEY}}
    with versions.find(q, {"_id": 0, "b": 1, "s": 1, "x": 1}, batch_size=PAGE) as cursor:
        return any(_in_layer(versions, rec, limit, floor) for rec in cursor)


def _layer_stream(versions: Coll, bid: ObjectId, limit: int | None, floor: int | None, collection: str, after: str) -> Iterator[dict[str, Any]]:
    """The newest record of each key of one layer, in key order.

    One cursor for the whole layer, fetched PAGE records per round trip: re-querying
    per page would cost a sort of the rest of the collection per page on servers that
    do not push a limit through their sort."""
    q = {"b": bid, "c": collection, "k": {"$gt": after}}
    cursor = versions.find(q, _META, batch_size=PAGE).sort([("k", ASCENDING), ("s", DESCENDING)])
    try:
        prev = None
        for rec in cursor:
            if rec["k"] != prev and _in_layer(versions, rec, limit, floor):
                prev = rec["k"]
                yield rec
    finally:
        cursor.close()


def iter_entries(versions: Coll, layers: list[tuple[ObjectId, int | None, int | None]], collection: str, after: str = "") -> Iterator[Entry]:
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


def slots_desc(versions: Coll, bid: ObjectId, top: int, batch: int = 100) -> Iterator[dict[str, Any]]:
    """A branch's records from slot ``top`` down to 1, without bodies.

    Slots are dense, so the newest records are the highest slot numbers: fetched by
    ``_id`` a batch at a time, whatever the length of the history (a sort by seq would
    read the whole branch on servers that do not stream sorted index scans)."""
    limit = top
    while top > 0:
        low = max(0, top - batch)
        ids = [slot_id(bid, s) for s in range(top, low, -1)]
        found = {r["s"]: r for r in versions.find({"_id": {"$in": ids}}, _META)}
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
    recs = [r for r in versions.find(q, _META) if _in_layer(versions, r, limit)]
    recs.sort(key=lambda r: r["s"], reverse=True)
    return recs


def seq_at(versions: Coll, bid: ObjectId, head: int, when: datetime) -> int:
    """The newest slot of a branch written at or before ``when`` (0: none), by binary
    search over the dense slots: O(log n) point lookups.  Slot times follow the order
    in which writers took their slots, to within the clock skew between writers."""
    lo, hi = 0, head  # invariant: slot lo is at or before `when` (0 stands for "before all"); slots above hi are after
    while lo < hi:
        mid = (lo + hi + 1) // 2
        rec = versions.find_one({"_id": slot_id(bid, mid)}, {"t": 1})
        if rec is not None and rec["t"] <= when:
            lo = mid
        else:
            hi = mid - 1
    return lo
