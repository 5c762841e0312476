"""The quick check of a re-import: a source that has not changed since the last import
into a collection, which nothing has written since, needs no reading at all.

``argonfs import`` of a file or a directory fingerprints its source (sizes, times and
inodes, store/transfer.py) the way rsync's quick check and git's index do.  A
successful import records, per (branch, collection), that fingerprint, the slot it
started from (the listing every source document was compared against) and its
transaction, in ``imports``.  The next import with the same fingerprint is skipped when
no record of the collection was appended to the branch above that slot, other than the
import's own: then every source document is still in the branch as that import left
it, so a full compare would write nothing.  Anything else (another fingerprint, a write
to the collection, more than ``MAX_SLOTS`` slots to look through) means the full
compare, which is always right.  Blocking pymongo code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson.objectid import ObjectId

from argonfs.store import versions as v
from argonfs.store.mongo import Db

IMPORTS = "imports"
#: slots above the recorded one read by id for the check, at most; past that, the full
#: compare is cheaper than proving nothing changed
MAX_SLOTS = 20_000


def record(db: Db, bid: ObjectId, collection: str, fingerprint: str, since: int, txn: str, count: int) -> None:
    row = {"b": bid, "c": collection, "fp": fingerprint, "s": since, "x": txn, "n": count, "t": datetime.now(UTC).replace(tzinfo=None)}
    db[IMPORTS].replace_one({"_id": f"{bid}:{collection}"}, row, upsert=True)


def unchanged(db: Db, bid: ObjectId, collection: str, fingerprint: str, head: int) -> int | None:
    """The number of documents the last import of this source read, if re-importing it
    would write nothing; None when that is not known without the full compare."""
    row = db[IMPORTS].find_one({"_id": f"{bid}:{collection}"})
    if row is None or row["fp"] != fingerprint or head - row["s"] > MAX_SLOTS:
        return None
    versions = db["versions"]
    for low in range(row["s"], head, v.IN_BATCH):
        ids = [v.slot_id(bid, s) for s in range(low + 1, min(low + v.IN_BATCH, head) + 1)]
        # records of bulk writes are not needed: their range record names the collection
        for rec in versions.find({"_id": {"$in": ids}}, {"c": 1, "rc": 1, "x": 1}):
            if collection in (rec.get("c"), rec.get("rc")) and rec.get("x") != row["x"]:
                return None
    count: Any = row["n"]
    return int(count)
