"""Writing version records densely, and which of them a snapshot can see.

A write takes the next free slot of its branch by inserting at ``head + 1`` (a duplicate
key means another writer won: read the head again and retry).  A multi-record operation
(a merge, a revert, an import's batches) writes its records first and then one commit
record; until that commit exists no reader sees them (``visible``), and gc aborts a
transaction left without one.  Blocking pymongo code; docs/architecture.md explains why
this is correct without MongoDB transactions.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from bson.objectid import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from argonfs.errors import Conflict
from argonfs.store.db.mongo import Coll
from argonfs.store.engine import packs
from argonfs.store.engine.versions import ABORT, BULK, COMMIT, COMMITS, HINT_EVERY, NO_BODY, RANGE, RANGE_KEY, forget_ranges, head, raise_hint, slot_id

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 1000


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
    insert attempt.  Once the records are in, the branch's head hint is raised to the
    last of them when that is ``HINT_EVERY`` slots above the hint this process knows
    (not for a range record: its writer commits right after).
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
            if pending[-1].get("op") != RANGE:
                # after the slots, never before; a range's slots are filled after it returns,
                # so an import raises the hint at its commit (docs/architecture.md, "The head hint")
                raise_hint(versions, bid, last, every=HINT_EVERY)
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
    forget_ranges(versions, bid)
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


def _check_slot_collision(error: Mapping[str, Any]) -> None:
    """Only a duplicate ``_id`` means another writer took the slot; any other unique
    index is not ours (e.g. a database written by another format) and retrying would
    never succeed."""
    pattern = error.get("keyPattern")
    if pattern is not None and list(pattern) != ["_id"]:
        raise Conflict(f"unexpected unique index {pattern} on the versions collection; is this database an argonfs repository of this format?")
