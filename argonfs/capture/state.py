"""A capture's record in the repository: collection ``captures``, one document per
captured branch (docs/formats.md, ``captures``).

The record is a hint and a lease, never the truth about what was applied: the resume
point of a batch lives in the batch's own commit record (``Repository.apply`` with
``commit``), so it is visible exactly when the batch is.  Before a batch the capture
writes the transaction id it is about to use (``begin``); after a restart, if that
transaction committed, its commit record gives the resume point, and if it did not,
nothing of it is visible and the previous point stands.  So a capture killed at any
moment resumes after the last batch that became visible: no event lost, none twice.

The lease (``owner``, ``beat``) keeps two captures off one branch.  A capture takes a
record over when its owner's heartbeat is older than ``LEASE`` or its owner is a
process of this host that no longer exists; every update names the owner it expects, so
a capture that lost its lease learns it at its next write and stops.

Blocking pymongo code.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from argonfs.errors import Conflict
from argonfs.store.db.mongo import Coll
from argonfs.store.repo.model import now
from argonfs.store.repo.protect import CAPTURES

if TYPE_CHECKING:
    from argonfs.store import Repository

COLLECTION = CAPTURES
#: a capture whose heartbeat is older than this is taken to be gone
LEASE = timedelta(seconds=30)
#: states a running capture reports; any other is where a capture stopped
RUNNING = ("copying", "following", "source-down")


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    id: str

    @classmethod
    def me(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex)

    def doc(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "id": self.id}


def _alive(owner: dict[str, Any] | None, beat: datetime | None, at: datetime) -> bool:
    if owner is None or beat is None or at - beat > LEASE:
        return False
    if owner.get("host") == socket.gethostname():
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def running(rec: dict[str, Any], at: datetime | None = None) -> bool:
    """Whether the capture of a record is alive (its lease is held)."""
    return rec.get("state") in RUNNING and _alive(rec.get("owner"), rec.get("beat"), at or now())


class Record:
    """The record of one captured branch, held by this process."""

    def __init__(self, coll: Coll, branch: str, owner: Owner) -> None:
        self.coll = coll
        self.branch = branch
        self.owner = owner
        self.doc: dict[str, Any] = {}

    def claim(self, source: dict[str, Any]) -> dict[str, Any]:
        """Take the lease of the branch's record (creating it on a first run) and return
        the record as it was.  Refused while another capture holds it, or when the
        record follows another source."""
        for _ in range(3):
            at = now()
            found = self.coll.find_one({"_id": self.branch})
            if found is None:
                fresh = {"_id": self.branch, "source": source, "state": "copying", "pos": None, "txn": None, "events": 0, "batches": 0, "started": at}
                try:
                    self.coll.insert_one({**fresh, "owner": self.owner.doc(), "beat": at})
                except DuplicateKeyError:
                    continue
                self.doc = fresh
                return fresh
            if {k: v for k, v in found["source"].items() if k != "label"} != {k: v for k, v in source.items() if k != "label"}:
                raise Conflict(
                    f"branch {self.branch!r} captures {found['source'].get('label', found['source']['shown'])}, not {source['label']}; "
                    "capture into another branch, or delete this branch first"
                )
            if _alive(found.get("owner"), found.get("beat"), at):
                o = found["owner"]
                raise Conflict(f"branch {self.branch!r} is being captured by pid {o['pid']} on {o['host']}; stop that capture first")
            took = self.coll.find_one_and_update(
                {"_id": self.branch, "owner": found.get("owner"), "beat": found.get("beat")},
                {"$set": {"owner": self.owner.doc(), "beat": at, "started": at}},
            )
            if took is not None:
                self.doc = found
                return found
        raise Conflict(f"another capture of branch {self.branch!r} started at the same time; try again")

    def update(self, **fields: Any) -> None:
        """Set fields of the record, as its owner; a capture that lost its lease stops."""
        fields["beat"] = now()
        done = self.coll.update_one({"_id": self.branch, "owner.id": self.owner.id}, {"$set": fields})
        if done.matched_count == 0:
            raise Conflict(f"the capture of branch {self.branch!r} was taken over by another process; this one stops")
        self.doc.update(fields)

    def release(self, state: str, message: str = "") -> None:
        """Give the lease up, saying where the capture stopped."""
        self.coll.update_one({"_id": self.branch, "owner.id": self.owner.id}, {"$set": {"state": state, "message": message, "owner": None, "beat": now()}})


def records(coll: Coll) -> list[dict[str, Any]]:
    return list(coll.find({}, {"owner.id": 0}).sort("_id", 1))


#: the state shown for a record whose branch was deleted (and made again, or not)
BRANCH_DELETED = "branch deleted (a new capture starts over)"


def status(repo: Repository, at: datetime | None = None) -> list[dict[str, Any]]:
    """Every capture as ``argonfs capture list`` and the console show it, by branch: its
    source (no credentials), state (``not running (last: ...)`` for a record whose owner
    is gone, ``BRANCH_DELETED`` for one whose branch is not the one it captured), the
    source time of its newest applied event, when that was applied, the lag of its last
    batch, its counters and, for a stopped one, its message.  Two reads."""
    at = at or now()
    branches = {b.name: b.id for b in repo.list_branches()}
    rows = []
    for rec in records(repo.db[COLLECTION]):
        state = rec.get("state", "")
        alive = running(rec, at)
        if rec.get("bid") is not None and branches.get(rec["_id"]) != rec["bid"]:
            state, alive = BRANCH_DELETED, False
        elif state in RUNNING and not alive:
            state = f"not running (last: {state})"
        rows.append(
            {
                "branch": rec["_id"],
                "source": rec["source"].get("label") or rec["source"]["shown"],
                "state": state,
                "running": alive,
                "event_time": rec.get("event_time"),
                "applied": rec.get("applied"),
                "lag_s": rec.get("lag_s"),
                "events": rec.get("events", 0),
                "batches": rec.get("batches", 0),
                "slot": rec.get("slot"),
                "started": rec.get("started"),
                "heartbeat": rec.get("beat"),
                "message": rec.get("message", ""),
                "pid": (rec.get("owner") or {}).get("pid"),
            }
        )
    return rows
