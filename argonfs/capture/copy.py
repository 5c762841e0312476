"""The first copy of a capture (or a ``--resync``): the source as of one moment, written
as what differs between it and the branch, with the events that arrived meanwhile, all
in one transaction.  Blocking code (pymongo on both sides).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

from argonfs import codec
from argonfs.capture.batches import BEAT_EVERY, Batch, Batches
from argonfs.errors import AlreadyExists, NotFound
from argonfs.store.engine.versions import DELETE, DROP, PUT
from argonfs.store.repo.model import Change, new_bundle_id
from argonfs.store.repo.writes import prepare

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """A stop was asked for while a first copy ran: nothing of it is committed."""


class FirstCopy(Batches):
    """A capture's first copy, over its batches (batches.py)."""

    def _ensure_branch(self) -> None:
        """The branch, created empty if absent and protected, its id in the record (once
        the source answered, so a source that cannot be reached leaves no branch)."""
        try:
            bid = self.repo.branch(self.branch).id
        except NotFound:
            try:
                bid = self.repo.create_branch(self.branch, empty=True).id
                log.info("created branch %s for the capture", self.branch)
            except AlreadyExists:
                bid = self.repo.branch(self.branch).id
        self.repo.protect_branch(self.branch)
        if self.record.doc.get("bid") != bid:
            self.record.update(bid=bid)

    def _first_copy(self) -> None:
        """Copy the source as of one moment: open the stream at the source's current time,
        write what differs between the source and the branch, then the events that
        arrived meanwhile, and commit the whole as one transaction."""
        t0 = self._operation_time()
        self.start_time = t0
        self._ensure_branch()
        self.record.update(state="copying", message="")
        self._pending = None
        with self._watch() as stream:
            # the stream's first resume point (its postBatchResumeToken) is where the copy
            # starts: a resume point the source can say it lost, unlike a bare time
            token = stream.resume_token
            batch = Batch(pos={"token": dict(token)} if token is not None else {"at": t0})
            counts = {"copied": 0, "unchanged": 0, "deleted": 0, "changes": 0}

            def changes() -> Iterator[Change]:
                for change in self._copy(counts):
                    counts["changes"] += 1
                    yield change
                while not batch.stop:  # the catch-up: events since t0, until the stream is idle
                    part, idle = self._collect(stream, batch.images, limit=math.inf)
                    batch.absorb(part)
                    counts["changes"] += len(part.changes)
                    yield from part.changes
                    self.record.update(state="copying")  # a long catch-up keeps its lease
                    if idle or self.stopping.is_set():
                        break
                commit["capture"] = {"pos": batch.pos, "events": batch.events, "source_time": batch.newest}

            txn = new_bundle_id()
            self.record.update(txn=txn)
            commit: dict[str, Any] = {}  # filled at the end of changes(): apply reads it after the last change
            slot = self.repo.apply(
                self.branch, changes(), kind="capture", message=f"capture of {self.spec.label}: first copy", txn=txn, commit=commit, direct=False
            )
            log.info("first copy: %s", counts)
            self._done(batch, slot, "copy", counts["changes"])
            if batch.stop:
                raise self._stopped(batch.stop)

    def _copy(self, counts: dict[str, int]) -> Iterator[Change]:
        """What differs between the source and the branch: puts of new and changed
        documents, deletes of those gone, drops of collections gone."""
        if self.spec.collection is not None:
            names = [self.spec.collection]
        else:
            names = sorted(n for n in self.source.list_collection_names() if self.spec.wants(n))
        present = set(self._branch_collections())
        for gone in sorted(present - set(names)):
            yield Change(DROP, gone)
        beat = time.monotonic()
        for name in names:
            current = self.repo.hashes(self.branch, name) if name in present else {}
            seen = set()
            for raw in self._scan(name):
                if self.stopping.is_set():
                    raise Interrupted
                if time.monotonic() - beat > BEAT_EVERY:  # a long copy keeps its lease
                    self.record.update(state="copying")
                    beat = time.monotonic()
                doc = prepare(raw, None)
                stem = codec.id_to_stem(doc["_id"])
                seen.add(stem)
                if current.get(stem) == codec.content_hash(codec.render(doc)):
                    counts["unchanged"] += 1
                    continue
                counts["copied"] += 1
                yield Change(PUT, name, stem, doc, prepared=True)
            for stem in sorted(set(current) - seen):
                counts["deleted"] += 1
                yield Change(DELETE, name, stem)
