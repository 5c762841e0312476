"""Garbage collection: reclaim the payloads of versions no reader can ever see.

A version is kept as a record (``_id``, ``b``, ``s``, ``c``, ``k``, ``op``, ``z``, ``h``,
``a``, ``t``...) and only its document ``d`` is removed, with ``gc`` set to the time of
the run, so every slot stays filled and every argument about dense sequences holds.
What is reclaimed (docs/architecture.md, "Garbage collection", has the argument):

- versions of transactions that never committed: gc first appends an ``abort`` record
  for a transaction idle longer than ``min_age``, then looks for its commit below that
  record; a commit is refused once an abort exists (``commits.append_commit``), so an
  aborted transaction can never become visible;
- in branches deleted longer than ``grace`` ago, and in branches a pull staged
  (``Repository.stage_branch``) that got neither a name nor a bundle and were last
  written longer than ``grace`` (and ``min_age``) ago, every version that none of the
  snapshots still able to read the branch sees: live branches, bundles (so labels),
  forks of branches that are themselves read, and the two sides of recorded merges
  (merge bases).  That is the range above the highest such snapshot, and the versions
  superseded between two of them.

Live branches keep everything else: ``BRANCH@SEQ`` can name any slot of them.

Blocking pymongo code.  Scans the ``versions`` metadata once (no bodies), then each
deleted branch's records, one collection at a time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bson.objectid import ObjectId

from argonfs.store.db.mongo import Db
from argonfs.store.engine import commits, packs
from argonfs.store.engine import versions as v

log = logging.getLogger(__name__)

DEFAULT_MIN_AGE = timedelta(hours=1)
DEFAULT_GRACE = timedelta(hours=1)
_CHUNK = v.IN_BATCH  # ids per update_many: see versions.IN_BATCH

Limits = dict[ObjectId, set["int | None"]]


@dataclass
class Report:
    dry_run: bool
    #: versions whose payload was (or, in a dry run, would be) removed, and their bytes
    #: as rendered JSON (the ``z`` of each), by reason
    records: dict[str, int] = field(default_factory=lambda: {"transactions": 0, "deleted branches": 0})
    bytes: dict[str, int] = field(default_factory=lambda: {"transactions": 0, "deleted branches": 0})
    #: transactions aborted by this run (would be, in a dry run)
    aborted: list[str] = field(default_factory=list)
    #: deleted branches still within the grace period: (name, deleted at)
    waiting: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


def collect(db: Db, author: str, *, dry_run: bool = False, min_age: timedelta = DEFAULT_MIN_AGE, grace: timedelta = DEFAULT_GRACE) -> Report:
    from argonfs.store.repo.model import now

    t0 = now()
    packs.forget()  # read every pack as it is now, marks included
    report = Report(dry_run)
    versions = db["versions"]
    dead: dict[str, list[dict[str, Any]]] = {"transactions": _dead_transactions(db, author, t0 - min_age, report, t0), "deleted branches": []}
    limits, settled = _reachable(db, t0, grace, report, min_age)
    for bid in settled:
        dead["deleted branches"] += _dead_in_branch(db, bid, limits.get(bid, set()))
    seen: set[str] = set()
    for reason, recs in dead.items():
        recs = [r for r in recs if r["_id"] not in seen]
        seen.update(r["_id"] for r in recs)
        report.records[reason] = len(recs)
        report.bytes[reason] = sum(r.get("z", 0) for r in recs)
        if not dry_run:
            _blank(versions, recs, t0)
    log.info("gc%s: %d versions, %d bytes", " (dry run)" if dry_run else "", report.total_records, report.total_bytes)
    return report


def _blank(versions: Any, recs: list[dict[str, Any]], t0: datetime) -> None:
    """Remove the payloads, keeping every record: the one in-place update argonfs makes
    (in ``versions``, ``bulk_versions``, or a bulk write's pack, store/engine/packs.py)."""
    packs.blank(versions.database, [r for r in recs if "p" in r], t0)
    ids = [r["_id"] for r in recs if "p" not in r]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for coll in (versions, versions.database[v.BULK]):
            coll.update_many({"_id": {"$in": chunk}, "gc": {"$exists": False}}, {"$unset": {"d": "", "w": "", "wz": ""}, "$set": {"gc": t0}})


def _dead_transactions(db: Db, author: str, idle_before: datetime, report: Report, t0: datetime) -> list[dict[str, Any]]:
    """Versions of transactions that are aborted, or idle since ``idle_before`` and
    aborted now; never those of a committed one.  Two scans of the tagged versions'
    metadata: the first keeps one row per transaction (every imported version is
    tagged, so keeping the versions would hold the repository in memory), the second,
    only when some transaction is dead, collects that one's versions."""
    versions = db["versions"]
    newest: dict[tuple[ObjectId, str], datetime] = {}
    for rec in _tagged(db, {"_id": 0, "b": 1, "x": 1, "t": 1}):
        key = (rec["b"], rec["x"])
        if key not in newest or rec["t"] > newest[key]:
            newest[key] = rec["t"]
    dead: set[tuple[ObjectId, str]] = set()
    for (bid, txn), last in newest.items():
        commit, abort = commits.txn_state(versions, bid, txn)
        if commit is not None:
            continue
        if abort is None:
            if last >= idle_before:
                continue  # may still be running
            report.aborted.append(txn)
            if not report.dry_run:
                commits.append(versions, bid, [{"c": v.COMMITS, "k": txn, "op": v.ABORT, "kind": "gc", "a": author, "t": t0}])
                commit, _ = commits.txn_state(versions, bid, txn)
                if commit is not None:  # it committed just before the abort: it stays
                    report.aborted.remove(txn)
                    continue
        dead.add((bid, txn))
    if not dead:
        return []
    fields = {"b": 1, "s": 1, "x": 1, "t": 1, "z": 1, "op": 1, "p": 1}
    return [rec for rec in _tagged(db, fields) if (rec["b"], rec["x"]) in dead and rec["op"] == v.PUT]


def _tagged(db: Db, fields: dict[str, int]) -> Iterable[dict[str, Any]]:
    """Every version tagged with a transaction and not yet reclaimed, branch by branch,
    its slots read by id PAGE per round trip.  Not one query over ``versions``: a server
    that materialises a filtered scan before its first batch (SecantusDB) does not
    answer within the socket timeout at a million versions."""
    versions = db["versions"]
    fields = {**fields, "x": 1, "gc": 1}
    for row in db["branches"].find({}, {"_id": 1, v.HINT: 1}):
        bid = row["_id"]
        v.note_hint(versions, bid, row.get(v.HINT))
        top = v.head(versions, bid)
        for low in range(0, top, v.PAGE):
            ids = [v.slot_id(bid, s) for s in range(low + 1, min(low + v.PAGE, top) + 1)]
            for rec in v.by_ids(versions, ids, fields):
                if "x" in rec and "gc" not in rec:
                    yield rec


def _reachable(db: Db, t0: datetime, grace: timedelta, report: Report, min_age: timedelta) -> tuple[Limits, list[ObjectId]]:
    """The seq limits at which each branch can still be read (``None``: any, a live
    branch), and the deleted branches past their grace period."""
    records = {r["_id"]: r for r in db["branches"].find({}, {"parent": 1, "fork": 1, "name": 1, "pull": 1, "created": 1, v.HINT: 1})}
    for bid, rec in records.items():
        v.note_hint(db["versions"], bid, rec.get(v.HINT))
    live = {r["bid"] for r in db["branch_names"].find({}, {"bid": 1})}
    deleted = {r["_id"]: r for r in db["deleted_branches"].find()}
    bundled = {r["b"] for r in db["bundles"].find({}, {"b": 1})}
    roots: list[tuple[ObjectId, int | None]] = [(bid, None) for bid in live]
    settled = []
    for bid, rec in records.items():
        if bid in live:
            continue
        row = deleted.get(bid)
        if row is None and "pull" in rec:  # staged by a pull (store/repo/refs.py, stage_branch)
            if bid in bundled:  # the pulled bundle's own branch, never named: it is the bundle
                roots.append((bid, None))
            elif (last := _last_write(db, bid, rec)) > t0 - max(grace, min_age):  # a pull in flight, or one that just failed
                roots.append((bid, None))
                report.waiting.append((f"{rec.get('name')} (a pull in flight or failed)", last))
            else:  # a failed or killed pull's: no name, no bundle, idle past the grace period
                settled.append(bid)
            continue
        if row is None:  # deleted by an older argonfs, or being created: start its clock now
            row = {"_id": bid, "name": rec.get("name"), "t": t0, "author": "argonfs gc (first seen without a name)"}
            if not report.dry_run:
                db["deleted_branches"].update_one({"_id": bid}, {"$setOnInsert": {k: val for k, val in row.items() if k != "_id"}}, upsert=True)
        if row["t"] > t0 - grace:
            roots.append((bid, None))  # views resolved before the deletion may still read it
            report.waiting.append((row.get("name") or str(bid), row["t"]))
        else:
            settled.append(bid)
    roots += [(r["b"], r["s"]) for r in db["bundles"].find({}, {"b": 1, "s": 1})]
    for r in db["merges"].find({}, {"sb": 1, "ss": 1, "tb": 1, "ts": 1}):
        roots += [(r["sb"], r["ss"]), (r["tb"], r["ts"])]
    return _close(roots, records), settled


def _last_write(db: Db, bid: ObjectId, rec: dict[str, Any]) -> datetime:
    """When a branch was last written: the time of its newest slot, else its creation."""
    top = v.head(db["versions"], bid)
    newest = next(v.by_ids(db["versions"], [v.slot_id(bid, top)], {"t": 1}), None) if top else None
    when: datetime = newest["t"] if newest is not None else rec["created"]
    return when


def _close(roots: Iterable[tuple[ObjectId, int | None]], records: dict[ObjectId, dict[str, Any]]) -> Limits:
    """Every (branch, limit) a root's chain reads: the root, then each parent at its fork."""
    limits: Limits = defaultdict(set)
    for bid, limit in roots:
        while True:
            if limit in limits[bid]:
                break  # this layer, and so everything above it in the chain, is known
            limits[bid].add(limit)
            rec = records.get(bid)
            if rec is None or rec["parent"] is None:
                break
            bid, limit = rec["parent"], rec["fork"]
    return limits


def _dead_in_branch(db: Db, bid: ObjectId, limits: set[int | None]) -> list[dict[str, Any]]:
    """The put versions of a deleted branch that no limit in ``limits`` sees."""
    versions = db["versions"]
    commits = {r["k"]: r["s"] for r in versions.find({"b": bid, "c": v.COMMITS}, {"k": 1, "s": 1, "op": 1}) if r["op"] == v.COMMIT}
    seqs = sorted(s for s in limits if s is not None)
    reserved = v.ranges(versions, bid)
    out = []
    for c in sorted({r["c"] for r in db["catalog"].find({"b": bid}, {"c": 1})}):
        recs = list(versions.find({"b": bid, "c": c}, {"d": 0, "w": 0}))
        ids = [v.slot_id(bid, s) for r in reserved if r["rc"] == c for s in range(r["s"] + 1, r["s"] + r["rn"] + 1)]
        recs += list(v.by_ids(versions, ids, v.NO_BODY))
        seen: set[str] = set()
        for limit in seqs:
            seen |= _seen_at(recs, commits, limit)
        out += [r for r in recs if r["op"] == v.PUT and "gc" not in r and r["_id"] not in seen]
    return out


def _seen_at(recs: list[dict[str, Any]], commits: dict[str, int], limit: int) -> set[str]:
    """Ids of the put versions of one collection of one layer a reader at ``limit``
    sees: the newest visible record of each key above the newest visible marker (the
    rules of lookup.lookup_many, applied to records already in hand)."""
    newest: dict[str, dict[str, Any]] = {}
    for r in recs:
        txn = r.get("x")
        if r["s"] > limit or (txn is not None and commits.get(txn, limit + 1) > limit):
            continue
        old = newest.get(r["k"])
        if old is None or r["s"] > old["s"]:
            newest[r["k"]] = r
    marker = newest.pop(v.MARKER_KEY, None)
    floor = marker["s"] if marker is not None else 0
    return {r["_id"] for r in newest.values() if r["op"] == v.PUT and r["s"] > floor}
