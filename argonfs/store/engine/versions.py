"""Version records: their fields, where each lives (its slot, in its own row or in a
pack), reading them by slot, and branch heads.  Appending them, and which records a
snapshot can see, are in store/engine/commits.py; reading a snapshot through a chain of
layers is in store/engine/reading.py.

Blocking pymongo code; docs/architecture.md explains why it is correct without
transactions.
"""

from __future__ import annotations

import bisect
import functools
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bson.objectid import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import PyMongoError

from argonfs.store.db.mongo import Coll
from argonfs.store.engine import packs

log = logging.getLogger(__name__)

Layer = tuple[ObjectId, "int | None"]
Chain = Sequence[Layer]
#: a layer with its seq bounds ``(floor, limit]`` (None: unbounded)
Bounds = tuple[ObjectId, "int | None", "int | None"]

PUT, DELETE, DROP, MKCOL = "put", "del", "drop", "mkcol"
MARKER_KEY = ""
PAGE = 1000
#: a put's kept bytes (store/repo/writes.py, ``kept_bytes``): ``w``, the bytes a writer gave
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


def forget_ranges(versions: Coll, bid: ObjectId | str) -> None:
    """Drop this process's cache of a branch's range records (a writer added one)."""
    _RANGES.pop((versions.database.name, str(bid)), None)


def _forget_ranges(versions: Coll, ids: list[str]) -> None:
    for i in ids:
        forget_ranges(versions, i.rpartition(":")[0])


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
#: slots just above the known top that the first round of a head search probes one by
#: one (then powers of two): a head up to this far above it is found in one round trip
DENSE = 16

#: the head hint: a field of each branch record (``branches``, docs/formats.md), a top of
#: the branch (a slot up to which every slot is filled) raised with ``$max`` after the
#: slots below it were acknowledged or observed, so never above the head; a fresh
#: process starts its head search there (docs/architecture.md, "The head hint")
BRANCHES, HINT = "branches", "hint"
#: a writer raises the hint once its appends reach this many slots above the hint it knows
HINT_EVERY = 8

#: (database, branch id) -> the highest hint this process knows is stored (read from a
#: branch record, or written): a top, so a head search may start there
_HINTED: dict[tuple[str, ObjectId], int] = {}


def note_hint(versions: Coll, bid: ObjectId, hint: int | None) -> None:
    """Remember a head hint read from a branch record (absent in a record no writer of
    this format has raised yet: then nothing)."""
    if hint:
        key = (versions.database.name, bid)
        if hint > _HINTED.get(key, 0):
            _HINTED[key] = hint


def hinted(versions: Coll, bid: ObjectId) -> int:
    """The head hint this process knows for a branch (0: none)."""
    return _HINTED.get((versions.database.name, bid), 0)


def raise_hint(versions: Coll, bid: ObjectId, top: int, *, every: int = 1) -> None:
    """Raise a branch's head hint to ``top``, a top that was acknowledged or observed,
    when it is at least ``every`` slots above the hint this process knows.  Only ever
    after the slots: a hint written first could point above a slot that is never
    written.  A failed write (a read-only user, a lost connection) only costs a later
    search a few round trips, and is not retried by this process until the next step."""
    key = (versions.database.name, bid)
    if top < _HINTED.get(key, 0) + every:
        return
    _HINTED[key] = top
    try:
        versions.database[BRANCHES].update_one({"_id": bid}, {"$max": {HINT: top}})
    except PyMongoError as exc:
        log.debug("could not raise the head hint of branch %s to %d: %s", bid, top, exc)


def head(versions: Coll, bid: ObjectId, known: int = 0) -> int:
    """The highest occupied slot of a branch (0 for none), at least ``known``.

    Slots are dense, so "slot x is filled" holds for every x up to the head and for
    none above it: the head is found by probing a few slots per round trip (the
    ``DENSE`` slots above the start and powers of two above them, then evenly spaced
    points), a handful of _id point lookups whatever the branch's length, and one round
    trip when the start is at most ``DENSE`` below the head.  The start is ``known`` or
    the branch's head hint (``note_hint``), whichever is higher; a search that needed
    more than one round raises the hint to what it found (readers repair a stale or
    missing hint, e.g. after an import that was killed before its commit).

    A range record (``append_bulk``) fills its own slot and reserves the ``rn`` after
    it, whose records are in ``BULK``: a probe that finds it counts the whole range as
    filled, and a probe inside a range looks empty.  That is still enough: the search
    keeps ``lo`` at a *top* (a slot up to which everything is filled), and a probe
    that looks empty just above a top is truly empty, since a range starts right
    after its record, which the search would have found at ``lo`` (docs/architecture.md,
    "Bulk writes").  ``known`` must be a top: a head seen before, or a slot appended
    (a range's last slot, not its record's); so is every hint.

    Only range records are probed that the probes hit, so a long run of ranges (an
    import's batches) would be passed one range per round trip: when the highest top is
    a range's, the next round also probes where the next ranges start if they have the
    same size, as an import's batches do, passing up to ``STRIDES`` ranges per round.
    Extra probes keep every argument above: they only find more tops.
    """
    lo, hi, stride, rounds = max(known, hinted(versions, bid)), None, 0, 0
    while True:
        if hi is None:
            probes = [*range(lo + 1, lo + DENSE + 1), *(lo + 2**i for i in range(DENSE.bit_length(), 24))]
        elif hi - lo <= 1:
            if rounds > 1:
                raise_hint(versions, bid, lo)
            return lo
        else:
            probes = list(range(lo + 1, hi, max(1, (hi - lo) // 64)))
        if stride:
            probes = sorted({*probes, *(lo + 1 + j * stride for j in range(1, STRIDES))})
        tops = _filled(versions, bid, probes)
        rounds += 1
        top, rn = max([(lo, 0), *tops])
        lo, stride = top, (rn + 1 if rn else 0)
        above = [p for p in probes if p > lo]  # every probe above the highest top is empty
        if hi is not None and lo >= hi:
            hi = None  # a range reached past the bound: search upwards again
        elif above:
            hi = above[0] if hi is None else min(hi, above[0])


#: The pseudo-collection of control records (commits, aborts, protection markers): no
#: user collection has an empty name.
COMMITS = ""
COMMIT = "commit"
#: written by ``argonfs gc`` for a transaction idle long enough: it can never commit after
ABORT = "abort"

#: the key and op of range records (``append_bulk``); like protection records, a key
#: no transaction id takes
RANGE_KEY = "~range"
RANGE = "range"


def ranges(versions: Coll, bid: ObjectId) -> list[dict[str, Any]]:
    """The range records of a branch (one indexed query: equality on (b, c, k))."""
    return list(versions.find({"b": bid, "c": COMMITS, "k": RANGE_KEY}, {"_id": 0, "s": 1, "rn": 1, "rc": 1, "x": 1, "pk": 1}))
