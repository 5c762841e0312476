"""Protected branches: direct writes refused, merges and reverts allowed.

Protection is part of a branch's own history: ``protect`` and ``unprotect`` append a
control record (collection ``""``, key ``~protect``) to the branch's dense sequence, so
"is the branch protected at slot n" is a fact about the stable prefix ``1..n`` that
never changes once slot ``n`` is observed.  A direct write asks that question for the
head ``n`` it is about to insert above, inside the append loop (``versions.Guard``): its
insert at ``n + 1`` succeeds only while ``n`` is still the head, so a write after the
protect record's slot has seen the record, and a write that did not see it landed
below it, before ``protect`` returned.  No time-to-live is involved.

The cost is one indexed query (equality on ``b, c, k``) when a writer's base moved past
what its process last knew; a process that keeps writing a branch nobody else writes
asks nothing, because its own records are not protection records (``Guard.written``).

Blocking pymongo code.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from bson.objectid import ObjectId

from argonfs.errors import Protected
from argonfs.store.db.mongo import Coll
from argonfs.store.engine import commits
from argonfs.store.engine import versions as v

PROTECT, UNPROTECT = "protect", "unprotect"
#: the key of protection records; transaction ids (14 base32 characters) never start with "~"
KEY = "~protect"

#: (database, branch id) -> (slot n, protected at n): true facts about stable prefixes
_KNOWN: dict[tuple[str, ObjectId], tuple[int, bool]] = {}
_lock = threading.Lock()


def _markers(versions: Coll, bid: ObjectId) -> list[dict[str, Any]]:
    return [r for r in commits.control_records(versions, bid, KEY) if r["op"] in (PROTECT, UNPROTECT)]


def newest(versions: Coll, bid: ObjectId, at: int | None = None) -> dict[str, Any] | None:
    """The branch's newest protection record at or below slot ``at`` (None: any)."""
    found = [r for r in _markers(versions, bid) if at is None or r["s"] <= at]
    return max(found, key=lambda r: r["s"], default=None)


def _remember(versions: Coll, bid: ObjectId, seq: int, protected: bool, *, replacing: int | None = None) -> None:
    key = (versions.database.name, bid)
    with _lock:
        known = _KNOWN.get(key)
        if replacing is not None and (known is None or known[0] != replacing):
            return
        if known is None or seq >= known[0]:
            _KNOWN[key] = (seq, protected)


def protected_at(versions: Coll, bid: ObjectId, seq: int) -> bool:
    """Whether the branch is protected as of slot ``seq`` (a head someone observed)."""
    known = _KNOWN.get((versions.database.name, bid))
    if known is not None and known[0] == seq:
        return known[1]
    rec = newest(versions, bid, seq)
    protected = rec is not None and rec["op"] == PROTECT
    _remember(versions, bid, seq, protected)
    return protected


#: the collection of capture records (argonfs/capture/state.py), one per captured branch
CAPTURES = "captures"


def captured(db: Any, name: str | None, bid: ObjectId) -> str | None:
    """What source a capture keeps this branch in step with (None: no capture does);
    a record of an earlier branch of the same name does not count."""
    if name is None:
        return None
    rec = db[CAPTURES].find_one({"_id": name}, {"source": 1, "bid": 1})
    if rec is None or rec.get("bid") != bid:
        return None
    return str(rec["source"].get("label") or rec["source"].get("shown"))


def refuse_captured(db: Any, name: str, bid: ObjectId) -> None:
    """A captured branch is written by its capture only: a merge or a revert into it
    would be silently undone by the capture's next batches, or leave it unlike its source."""
    source = captured(db, name, bid)
    if source is not None:
        raise Protected(f"branch {name!r} is written only by its capture of {source}: fork it ('argonfs branch create NEW --from {name}') and change the fork")


class Guard:
    """Refuses a direct write to a protected branch (a ``versions.Guard``)."""

    def __init__(self, versions: Coll, bid: ObjectId, name: str | None) -> None:
        self.versions = versions
        self.bid = bid
        self.name = name
        self.base: int | None = None

    def __call__(self, base: int) -> None:
        if protected_at(self.versions, self.bid, base):
            name = self.name or str(self.bid)
            refuse_captured(self.versions.database, name, self.bid)
            raise Protected(f"branch {name!r} is protected: merge into it or revert it ('argonfs branch unprotect {name}' allows direct writes)")
        self.base = base

    def written(self, last: int) -> None:
        """Our own records filled ``(base, last]``: none is a protection record, so the
        state known at ``base`` holds at ``last`` too."""
        if self.base is not None:
            known = _KNOWN.get((self.versions.database.name, self.bid))
            if known is not None and known[0] == self.base:
                _remember(self.versions, self.bid, last, known[1], replacing=self.base)


def record(op: str, author: str, t: datetime) -> dict[str, Any]:
    return {"c": v.COMMITS, "k": KEY, "op": op, "a": author, "t": t}


def set_protected(versions: Coll, bid: ObjectId, protected: bool, author: str, t: datetime, guess: int | None) -> int | None:
    """Append a protection record unless the branch is already in that state; return its
    slot (None when nothing changed)."""
    current = newest(versions, bid)
    if (current is not None and current["op"] == PROTECT) == protected:
        return None
    slot = commits.append(versions, bid, [record(PROTECT if protected else UNPROTECT, author, t)], guess)
    _remember(versions, bid, slot, protected)
    return slot
