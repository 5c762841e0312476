"""The read log: who read which document through a mount, and when.

Mounts started with ``--read-log`` store batches of entries in the ``reads`` collection
(``record_reads``); ``read_log`` answers newest first.  Blocking (pymongo).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from argonfs.store.db.mongo import translating
from argonfs.store.repo.views import Views


class ReadLog(Views):
    """Recording and reading the read log; see ``Repository``."""

    @translating
    def record_reads(self, reads: list[dict[str, Any]]) -> None:
        """Store a batch of read-log entries: ``{user, ref, c, k, t}`` each."""
        if reads:
            self.db["reads"].insert_many(reads, ordered=False)

    @translating
    def read_log(self, ref: str | None = None, *, since: datetime | None = None, limit: int = 0) -> list[dict[str, Any]]:
        """Who read which document when (from mounts started with --read-log), newest first."""
        q: dict[str, Any] = {}
        if ref is not None:
            q["ref"] = ref
        if since is not None:
            q["t"] = {"$gte": since}
        rows = self.db["reads"].find(q, {"_id": 0}).sort("t", DESCENDING).limit(limit)
        return [{"time": r["t"], "user": r["user"], "ref": r["ref"], "collection": r["c"], "id": r["k"]} for r in rows]
