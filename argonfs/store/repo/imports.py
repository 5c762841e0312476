"""The quick check of a re-import: a source that has not changed since the last import
into a collection, which nothing has written since, needs no reading at all.

``argonfs import`` of a file or a directory fingerprints its source (sizes, times and
inodes, store/repo/transfer.py) the way rsync's quick check and git's index do.  A
successful import records, per (branch, collection), that fingerprint, the slot it
started from (the listing every source document was compared against) and its
transaction, in ``imports``.  The next import with the same fingerprint is skipped when
no record of the collection was appended to the branch above that slot, other than the
import's own: then every source document is still in the branch as that import left
it, so a full compare would write nothing.  Anything else (another fingerprint, a write
to the collection, more than ``MAX_SLOTS`` slots to look through besides the import's
own) means the full compare, which is always right.  Blocking pymongo code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson.objectid import ObjectId

from argonfs.store.db.mongo import Db
from argonfs.store.engine import versions as v

IMPORTS = "imports"
#: slots above the recorded one read by id for the check, at most (the import's own bulk
#: slots are not read); past that, the full compare is cheaper than proving nothing changed
MAX_SLOTS = 20_000


def record(db: Db, bid: ObjectId, collection: str, fingerprint: str, since: int, txn: str, count: int) -> None:
    row = {"b": bid, "c": collection, "fp": fingerprint, "s": since, "x": txn, "n": count, "t": datetime.now(UTC).replace(tzinfo=None)}
    db[IMPORTS].replace_one({"_id": f"{bid}:{collection}"}, row, upsert=True)


def unchanged(db: Db, bid: ObjectId, collection: str, fingerprint: str, head: int) -> int | None:
    """The number of documents the last import of this source read, if re-importing it
    would write nothing; None when that is not known without the full compare."""
    row = db[IMPORTS].find_one({"_id": f"{bid}:{collection}"})
    if row is None or row["fp"] != fingerprint:
        return None
    versions = db["versions"]
    # the import's own bulk slots need no reading: its range records say which they are
    own = sorted((r["s"] + 1, r["s"] + r["rn"]) for r in v.ranges(versions, bid) if r.get("x") == row["x"] and r["s"] > row["s"])
    spans = _minus((row["s"] + 1, head), own)
    if sum(hi - lo + 1 for lo, hi in spans) > MAX_SLOTS:
        return None
    for lo, hi in spans:
        for low in range(lo, hi + 1, v.IN_BATCH):
            ids = [v.slot_id(bid, s) for s in range(low, min(low + v.IN_BATCH - 1, hi) + 1)]
            # records of other bulk writes are not needed: their range records name the collection
            for rec in versions.find({"_id": {"$in": ids}}, {"c": 1, "rc": 1, "x": 1}):
                if collection in (rec.get("c"), rec.get("rc")) and rec.get("x") != row["x"]:
                    return None
    count: Any = row["n"]
    return int(count)


def _minus(span: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The inclusive ``span`` without the sorted, disjoint inclusive ``holes``."""
    out, lo = [], span[0]
    for a, b in holes:
        if a > lo:
            out.append((lo, min(a - 1, span[1])))
        lo = max(lo, b + 1)
    if lo <= span[1]:
        out.append((lo, span[1]))
    return [(a, b) for a, b in out if a <= b]
