"""Version records: their fields, appending them densely (single writes, batches and
transactions with their commit records), branch heads, and which records a snapshot can
see.  Reading a snapshot through a chain of layers is in store/engine/reading.py.

Blocking pymongo code; docs/architecture.md explains why it is correct without
transactions.
"""

from __future__ import annotations

import bisect
import functools
import logging
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from argonfs.errors import Conflict
from argonfs.store.db.mongo import Coll
from argonfs.store.engine import packs

log = logging.getLogger(__name__)

Layer = tuple[ObjectId, "int | None"]
Chain = Sequence[Layer]

PUT, DELETE, DROP, MKCOL = "put", "del", "drop", "mkcol"
MARKER_KEY = ""
PAGE = 1000
_MAX_ATTEMPTS = 1000
#: a put's kept bytes (store/repo/documents.py, ``kept``): ``w``, the bytes a writer gave
#: (zlib-compressed when ``wz`` is 1), present only when they differ from the rendering;
#: ``wz`` is in every record that keeps bytes, so a projection without them still says so
KEPT, KEPT_ZLIB = "w", "wz"
NO_BODY = {"d": 0, KEPT: 0}
#: the records of bulk writes (``append_bulk``): the same fields as ``versions``, in a
#: collection with no index but ``_id``
BULK = "bulk_versions"


class Entry(NamedTuple):
    """What a listing knows of a live document without its body.  A named tuple, as a
    remote's entries are: a listing builds one per document, and a tuple costs a
    fraction of an object to build (checkpoints.py builds them without the generated
    ``__new__``'s argument handling)."""

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


@functools.lru_cache(maxsize=4096)
def time_ns(t: datetime) -> int:
    """Nanoseconds since the epoch of a naive-UTC datetime from MongoDB.  Cached: the
    versions of one batch share a few milliseconds, and a listing asks per document."""
    return (t - _EPOCH) // _MICROSECOND * 1000


def kept_fields(raw: bytes) -> dict[str, Any]:
    """The fields that keep a writer's bytes in a record: zlib-compressed when that is
    smaller (indentation and repeated keys compress well)."""
    packed = zlib.compress(raw, 6)
    return {KEPT: packed, KEPT_ZLIB: 1} if len(packed) < len(raw) else {KEPT: raw, KEPT_ZLIB: 0}


def kept(rec: Mapping[str, Any]) -> bytes | None:
    """The bytes a put's writer gave, when the record keeps them (else the version
    reads as its document's canonical rendering)."""
    raw = rec.get(KEPT)
    if raw is None:
        return None
    return zlib.decompress(raw) if rec.get(KEPT_ZLIB) else bytes(raw)


def entry_of(rec: dict[str, Any]) -> Entry:
    return Entry(rec["k"], rec["z"], rec["h"], rec["s"], rec["b"], rec["t"], rec["a"], rec.get("mt"))


def create_indexes(versions: Coll) -> None:
    # The slot's uniqueness comes from _id ("<branch id>:<seq>"), so no second unique index.
    versions.create_index([("b", ASCENDING), ("c", ASCENDING), ("k", ASCENDING), ("s", DESCENDING)], name="key")


def slot_id(bid: ObjectId, seq: int) -> str:
    return f"{bid}:{seq}"


#: ids (or keys) per ``$in``: SecantusDB's cost per element grows with the list's length
#: (measured on a million versions: 0.3 ms per id up to 100, 1 ms at 400, 2 ms at 1,000)
IN_BATCH = 100


def by_ids(versions: Coll, ids: Sequence[str], projection: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The records with these ids (those that exist), ``IN_BATCH`` per query.  A slot a
    bulk write reserved (``append_bulk``) is read from its pack (store/engine/packs.py) or from
    ``BULK``, the others from ``versions``, as the branch's range records known to this
    process say; an id not found where they say is looked for in the other places (and
    the ranges are read again), so the answer never depends on the cache."""
    drop_id = projection is not None and not projection.get("_id", 1)
    if drop_id:
        assert projection is not None
        projection = {k: val for k, val in projection.items() if k != "_id"} or None  # _id is in by default
    for rec in _by_ids(versions, ids, projection):
        if drop_id:
            del rec["_id"]
        yield rec


def _by_ids(versions: Coll, ids: Sequence[str], projection: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    db = versions.database
    for start in range(0, len(ids), IN_BATCH):
        part = list(ids[start : start + IN_BATCH])
        reserved = _reserved(versions, part)
        in_packs = _in_packs(versions, [i for i in part if i in reserved])
        seen: set[str] = set()
        for rec in packs.records(db, in_packs, projection):
            seen.add(rec["_id"])
            yield rec
        for coll, wanted in ((versions, [i for i in part if i not in reserved]), (db[BULK], [i for i in part if i in reserved and i not in in_packs])):
            if wanted:
                for rec in coll.find({"_id": {"$in": wanted}}, projection):
                    seen.add(rec["_id"])
                    yield rec
        missing = [i for i in part if i not in seen]
        if missing:
            misplaced = [i for i in missing if i not in reserved]
            if misplaced:
                _forget_ranges(versions, misplaced)
                packed = _in_packs(versions, misplaced)
                yield from packs.records(db, packed, projection)
                misplaced = [i for i in misplaced if i not in packed]
            for coll, wanted in ((db[BULK], misplaced), (versions, [i for i in missing if i in reserved])):
                if wanted:
                    yield from coll.find({"_id": {"$in": wanted}}, projection)


def _in_packs(versions: Coll, ids: list[str]) -> dict[str, str]:
    """The pack of each of these ids that a bulk write packed, as far as this process
    knows the range records."""
    slots = [(ObjectId(bid), int(seq)) for bid, _, seq in (i.rpartition(":") for i in ids)]
    return {slot_id(bid, seq): pid for (bid, seq), pid in packs_of(versions, slots).items()}


def packs_of(versions: Coll, slots: Iterable[tuple[ObjectId, int]]) -> dict[tuple[ObjectId, int], str]:
    """``packed`` for slots ``(branch id, seq)`` of any branches."""
    by_branch: dict[ObjectId, list[int]] = {}
    for bid, seq in slots:
        by_branch.setdefault(bid, []).append(seq)
    return {(bid, seq): pid for bid, seqs in by_branch.items() for seq, pid in packed(versions, bid, seqs).items()}


class _Ranges(NamedTuple):
    """A branch's range records as this process read them: the slots each reserves,
    sorted, and the packs of their records (first slot, count, pack id), sorted."""

    spans: list[tuple[int, int]]
    packs: list[tuple[int, int, str]]


#: (database, branch id) -> its range records, read on first use
_RANGES: dict[tuple[str, str], _Ranges] = {}


def _ranges_of(versions: Coll, bid: str) -> _Ranges:
    key = (versions.database.name, bid)
    known = _RANGES.get(key)
    if known is None:
        spans, runs = [], []
        for r in ranges(versions, ObjectId(bid)):
            spans.append((r["s"] + 1, r["s"] + r["rn"]))
            runs += [(r["s"] + 1 + offset, count, packs.pack_id(ObjectId(bid), r["s"] + 1 + offset)) for offset, count in r.get("pk", ())]
        known = _RANGES[key] = _Ranges(sorted(spans), sorted(runs))
    return known


def _reserved(versions: Coll, ids: list[str]) -> set[str]:
    """The ids among these that lie in a bulk write's range, by this process's copy of
    each branch's range records (read on first use)."""
    out = set()
    for i in ids:
        bid, _, seq = i.rpartition(":")
        spans = _ranges_of(versions, bid).spans
        if spans:
            s = int(seq)
            j = bisect.bisect_right(spans, (s, s)) - 1
            if (j >= 0 and spans[j][0] <= s <= spans[j][1]) or (j + 1 < len(spans) and spans[j + 1][0] == s):
                out.add(i)
    return out


def packed(versions: Coll, bid: ObjectId, seqs: Sequence[int]) -> dict[int, str]:
    """The pack (store/engine/packs.py) holding the record of each of these slots, for those
    a bulk write packed, as far as this process knows its range records: a slot left
    out is read through ``by_ids``, which does not depend on this."""
    runs = _ranges_of(versions, str(bid)).packs
    out = {}
    if runs:
        for s in seqs:
            j = bisect.bisect_right(runs, (s, MAX_RUN)) - 1
            if j >= 0 and runs[j][0] <= s < runs[j][0] + runs[j][1]:
                out[s] = runs[j][2]
    return out


#: above any count of a run, for bisecting runs by their first slot
MAX_RUN = 1 << 62


def _forget_ranges(versions: Coll, ids: list[str]) -> None:
    for i in ids:
        _RANGES.pop((versions.database.name, i.rpartition(":")[0]), None)


def in_bulk(versions: Coll, bid: ObjectId, seqs: Sequence[int]) -> set[int]:
    """Which of these slots of a branch a bulk write reserved, as far as this process
    knows (a hint for readers choosing a query; ``by_ids`` does not depend on it)."""
    return {int(i.rpartition(":")[2]) for i in _reserved(versions, [slot_id(bid, s) for s in seqs])}


def slot_record(versions: Coll, bid: ObjectId, seq: int, projection: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The record in one slot, from ``versions`` or ``BULK``; None for an empty slot."""
    return next(by_ids(versions, [slot_id(bid, seq)], projection), None)


def _filled(versions: Coll, bid: ObjectId, seqs: list[int]) -> list[tuple[int, int]]:
    """The *tops* of the probed slots that are filled (the slot itself, or for a range
    record the last slot it reserves), each with the count of slots its record reserves."""
    ids = [slot_id(bid, s) for s in seqs]
    return [(r["s"] + r.get("rn", 0), r.get("rn", 0)) for r in versions.find({"_id": {"$in": ids}}, {"_id": 0, "s": 1, "rn": 1})]


#: ranges of one size passed per head probe round
STRIDES = 64


def head(versions: Coll, bid: ObjectId, known: int = 0) -> int:
    """The highest occupied slot of a branch (0 for none), at least ``known``.

    Slots are dense, so "slot x is filled" holds for every x up to the head and for
    none above it: the head is found by probing a few slots per round trip (powers of
    two above ``known``, then evenly spaced points), a handful of _id point lookups
    whatever the branch's length, and one round trip when ``known`` is current.

    A range record (``append_bulk``) fills its own slot and reserves the ``rn`` after
    it, whose records are in ``BULK``: a probe that finds it counts the whole range as
    filled, and a probe inside a range looks empty.  That is still enough: the search
    keeps ``lo`` at a *top* (a slot up to which everything is filled), and a probe
    that looks empty just above a top is truly empty, since a range starts right
    after its record, which the search would have found at ``lo`` (docs/architecture.md,
    "Bulk writes").  ``known`` must be a top: a head seen before, or a slot appended.

    Only range records are probed that the probes hit, so a long run of ranges (an
    import's batches) would be passed one range per round trip: when the highest top is
    a range's, the next round also probes where the next ranges start if they have the
    same size, as an import's batches do, passing up to ``STRIDES`` ranges per round.
    Extra probes keep every argument above: they only find more tops.
    """
    lo, hi, stride = known, None, 0
    while True:
        if hi is None:
            probes = [lo + 2**i for i in range(24)]
        elif hi - lo <= 1:
            return lo
        else:
            probes = list(range(lo + 1, hi, max(1, (hi - lo) // 64)))
        if stride:
            probes = sorted({*probes, *(lo + 1 + j * stride for j in range(1, STRIDES))})
        tops = _filled(versions, bid, probes)
        top, rn = max([(lo, 0), *tops])
        lo, stride = top, (rn + 1 if rn else 0)
        above = [p for p in probes if p > lo]  # every probe above the highest top is empty
        if hi is not None and lo >= hi:
            hi = None  # a range reached past the bound: search upwards again
        elif above:
            hi = above[0] if hi is None else min(hi, above[0])


def in_layer(versions: Coll, rec: dict[str, Any], limit: int | None, floor: int | None = None) -> bool:
    """Whether a record lies in a layer's seq bounds ``(floor, limit]`` and is visible
    there (see ``visible``).

    The bounds are checked here rather than sent to the server: a filter with ranges on
    two fields of the index (or an ``$in`` and a range) makes some servers (SecantusDB)
    give up the index and scan the whole collection, while equality on (b, c) and one
    condition on k always uses it.  What the client then skips is bounded by the
    parent's changes after the fork and the records a collection marker hides."""
    return in_bounds(rec, limit, floor) and visible(versions, rec, limit)


def in_bounds(rec: dict[str, Any], limit: int | None, floor: int | None = None) -> bool:
    s = rec["s"]
    return (limit is None or s <= limit) and (floor is None or s > floor)


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


def visible_from(versions: Coll, rec: dict[str, Any]) -> int | None:
    """The slot from which a record is visible: its own, or for a transaction's record
    its commit record's (None: not committed).  The seq the log prints for it, so that
    ``branch@seq`` shows it (docs/history.md)."""
    if rec.get("x") is None:
        seq: int = rec["s"]
        return seq
    if not visible(versions, rec, None):
        return None
    return _COMMITTED[(versions.database.name, rec["b"], rec["x"])]


def control_records(versions: Coll, bid: ObjectId, key: str) -> list[dict[str, Any]]:
    """The control records (collection ``COMMITS``) of one key in a branch: one indexed
    query, equality on (b, c, k)."""
    return list(versions.find({"b": bid, "c": COMMITS, "k": key}, NO_BODY))


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


#: the key and op of range records (``append_bulk``); like protection records, a key
#: no transaction id takes
RANGE_KEY = "~range"
RANGE = "range"


def append_bulk(versions: Coll, bid: ObjectId, records: list[dict[str, Any]], guess: int | None, txn: str, kind: str, guard: Guard | None = None) -> int:
    """Append a transaction's records without an entry each in the key index: one
    *range record* takes the next slot and reserves the ``len(records)`` after it
    (``head`` counts them as filled), then the records go to those slots: runs of puts
    in packs (store/engine/packs.py; the range record lists them as ``pk``), the others to
    ``BULK``.
    Returns the last slot reserved.

    Slots stay dense and never shared: the range record is an ordinary append, and no
    writer can compute a head inside a range without finding its record.  The records
    are found by slot through ``by_ids`` and by key through the transaction's bulk
    listing (store/engine/bulk.py), which the writer stores before its commit record.  A
    writer that dies between the two leaves reserved slots of a transaction that never
    commits: like any uncommitted record, seen by nobody."""
    layout = packs.runs(records)
    rng = {
        "c": COMMITS,
        "k": RANGE_KEY,
        "op": RANGE,
        "rn": len(records),
        "rc": records[0]["c"],
        "x": txn,
        "xk": kind,
        "a": records[0]["a"],
        "t": records[0]["t"],
    }
    if layout:
        rng["pk"] = [list(run) for run in layout]
    first = append(versions, bid, [rng], guess, guard)
    _RANGES.pop((versions.database.name, str(bid)), None)
    for i, rec in enumerate(records):
        rec["b"], rec["s"], rec["x"], rec["xk"] = bid, first + 1 + i, txn, kind
        rec["_id"] = slot_id(bid, rec["s"])
    rows = packs.rows(records, layout)
    if rows:
        versions.database[packs.PACKS].insert_many(rows, ordered=False)
    in_packs = {i for offset, count in layout for i in range(offset, offset + count)}
    alone = [rec for i, rec in enumerate(records) if i not in in_packs]
    if alone:
        versions.database[BULK].insert_many(alone, ordered=False)
    return first + len(records)


def ranges(versions: Coll, bid: ObjectId) -> list[dict[str, Any]]:
    """The range records of a branch (one indexed query: equality on (b, c, k))."""
    return list(versions.find({"b": bid, "c": COMMITS, "k": RANGE_KEY}, {"_id": 0, "s": 1, "rn": 1, "rc": 1, "x": 1, "pk": 1}))


def _check_slot_collision(error: Mapping[str, Any]) -> None:
    """Only a duplicate ``_id`` means another writer took the slot; any other unique
    index is not ours (e.g. a database written by another format) and retrying would
    never succeed."""
    pattern = error.get("keyPattern")
    if pattern is not None and list(pattern) != ["_id"]:
        raise Conflict(f"unexpected unique index {pattern} on the versions collection; is this database an argonfs repository of this format?")
