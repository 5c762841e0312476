"""Batches: a source's change stream read into batches of the store's changes (events
turned into puts, deletes and drops, never splitting a source transaction), and a batch
written to the branch as one transaction whose commit record carries the resume point it
ends at (why that is exactly once: state.py; event to version: docs/capture.md).  The
base of ``Capture`` (run.py), with what it shares: its options, its error, its state.
Blocking code (pymongo on both sides).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson.timestamp import Timestamp

from argonfs import codec
from argonfs.capture import state as st
from argonfs.capture.events import SourceSpec, apply_update, tx_key
from argonfs.errors import ArgonError, NotFound
from argonfs.store.engine.versions import DELETE, DROP, PUT
from argonfs.store.repo.model import Change, new_bundle_id, now
from argonfs.store.repo.writes import prepare

log = logging.getLogger(__name__)

BEAT_EVERY = 5.0
#: a first copy writes runs of this many puts of a collection as bulk writes (as import does)
BULK_MIN = 500


class Stopped(ArgonError):
    """The capture stopped for a reason the user must act on (the message says how);
    ``state`` is what ``capture list`` shows for it."""

    exit_code = 10

    def __init__(self, message: str, state: str = "failed") -> None:
        super().__init__(message)
        self.state = state


@dataclass
class Options:
    batch_size: int = 1000
    batch_time: float = 0.2
    once: bool = False
    resync: bool = False
    #: a batch's runs of this many puts of one collection go as bulk writes (0: never):
    #: a capture catching up a backlog writes at an import's speed, while one following
    #: a steady load writes small batches through the key index (each bulk write leaves
    #: a listing that lookups of names in its range read; docs/capture.md)
    bulk_min: int = 1000


@dataclass
class Batch:
    """Events read from the stream, waiting to be written as one transaction."""

    changes: list[Change] = field(default_factory=list)
    events: int = 0
    pos: dict[str, Any] | None = None
    oldest: datetime | None = None
    newest: datetime | None = None
    cluster: Timestamp | None = None
    #: (collection, stem) -> the document after the capture's last event of it (None: deleted)
    images: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    tx: tuple[Any, Any] | None = None
    stop: str | None = None  # the state a stopping event leaves: dropped, invalidated

    def absorb(self, part: Batch) -> None:
        """Take over what a later part read (the first copy's catch-up comes in parts)."""
        self.events += part.events
        self.pos = part.pos or self.pos
        self.oldest = self.oldest or part.oldest
        self.newest = part.newest or self.newest
        self.cluster = part.cluster or self.cluster
        self.stop = part.stop


def wall_time(event: dict[str, Any]) -> datetime:
    wall = event.get("wallTime")
    if isinstance(wall, datetime):
        return wall.replace(tzinfo=None)
    ts = event.get("clusterTime")
    return datetime.fromtimestamp(ts.time, UTC).replace(tzinfo=None) if isinstance(ts, Timestamp) else now()


class Batches:
    """What a capture of ``spec`` into branch ``branch`` of ``repo`` reads and writes a
    batch with; ``report`` receives a dict per committed batch (and per retry)."""

    def __init__(self, repo: Any, spec: SourceSpec, branch: str, options: Options, report: Callable[[dict[str, Any]], None]) -> None:
        from argonfs.store.db.mongo import new_client

        self.repo = repo
        self.spec = spec
        self.branch = branch
        self.options = options
        self.report = report
        self.source = new_client(spec.uri)[spec.db]  # closed by run(), while the source may still answer
        self.record = st.Record(repo.db[st.COLLECTION], branch, st.Owner.me())
        self.stopping = threading.Event()
        self.start_time: Timestamp | None = None
        self._pending: dict[str, Any] | None = None  # an event read past a batch's end
        self._writing: tuple[Future[None], Batch] | None = None  # the batch being written

    # ------------------------------------------------------------------ the stream

    def _operation_time(self) -> Timestamp:
        with self.source.client.start_session() as session:
            self.source.command("ping", session=session)
            t = session.operation_time
        if t is None:
            raise Stopped(f"{self.spec.shown} reports no cluster time: change streams need a replica set or a sharded cluster")
        # the time of the newest write the source had made; a stream opened at it would
        # repeat that write, which a copy taken now already holds
        return Timestamp(t.time, t.inc + 1)

    def _watch(self, **at: Any) -> Any:
        target = self.source[self.spec.collection] if self.spec.collection else self.source
        pipeline = []
        if self.spec.only:
            names = list(self.spec.only)
            pipeline.append(
                {"$match": {"$or": [{"ns.coll": {"$in": names}}, {"to.coll": {"$in": names}}, {"operationType": {"$in": ["dropDatabase", "invalidate"]}}]}}
            )
        return target.watch(pipeline, full_document="updateLookup", full_document_before_change="whenAvailable", max_await_time_ms=100, batch_size=1000, **at)

    def _settle(self) -> None:
        """Wait for the batch being written (raising its error)."""
        if self._writing is not None:
            future, _ = self._writing
            self._writing = None
            future.result()

    def _next(self, stream: Any) -> dict[str, Any] | None:
        if self._pending is not None:
            event, self._pending = self._pending, None
            return event
        found: dict[str, Any] | None = stream.try_next()
        return found

    def _collect(self, stream: Any, images: dict[tuple[str, str], dict[str, Any] | None] | None = None, *, limit: float | None = None) -> tuple[Batch, bool]:
        """Read events until the batch is full, its time is up, a stop is asked for, or
        the stream is idle, ending only between source transactions (a transaction's
        events share ``lsid`` and ``txnNumber``).  Returns the batch and whether the
        stream ran dry."""
        batch = Batch(images={} if images is None else images)
        deadline = None
        while True:
            event = self._next(stream)
            if event is None:
                return batch, True
            key = tx_key(event)
            boundary = key is None or key != batch.tx
            if batch.events and boundary and (self.stopping.is_set() or self._full(batch, deadline)):
                self._pending = event
                return batch, False
            self._add(batch, event)
            batch.tx = key
            if deadline is None:
                deadline = time.monotonic() + (self.options.batch_time if limit is None else limit)
            if batch.stop:
                return batch, False

    def _full(self, batch: Batch, deadline: float | None) -> bool:
        return batch.events >= self.options.batch_size or (deadline is not None and time.monotonic() >= deadline)

    def _stopped(self, state: str) -> Stopped:
        if state == "dropped":
            return Stopped(
                f"the source database {self.spec.db!r} was dropped: every captured collection is dropped in branch {self.branch!r}, and the capture stops. "
                f"Run 'argonfs capture {self.spec.label} --branch {self.branch} --resync' to capture the database again",
                state,
            )
        return Stopped(
            f"the source's change stream was invalidated (its collection was dropped or renamed); the branch holds everything up to that point. "
            f"Run 'argonfs capture {self.spec.label} --branch {self.branch} --resync' to take a fresh copy",
            state,
        )

    # ------------------------------------------------------------------ events

    def _add(self, batch: Batch, event: dict[str, Any]) -> None:
        batch.events += 1
        batch.pos = {"token": dict(event["_id"])}
        batch.cluster = event.get("clusterTime") or batch.cluster
        wall = wall_time(event)
        batch.oldest = batch.oldest or wall
        batch.newest = wall
        op = event["operationType"]
        ns = event.get("ns") or {}
        coll = ns.get("coll")
        if op == "invalidate":
            batch.stop = batch.stop or "invalidated"
            return
        if op == "dropDatabase":
            self._settle()  # its collections are the branch's, with the batch being written
            batch.changes.extend(Change(DROP, c) for c in self._branch_collections())
            batch.stop = "dropped"
            return
        if op == "rename":
            self._rename(batch, coll, event.get("to") or {})
            return
        if coll is None or not self.spec.wants(coll):
            return
        if op in ("insert", "replace"):
            self._put(batch, coll, event.get("fullDocument"))
        elif op == "update":
            self._update(batch, coll, event)
        elif op == "delete":
            stem = codec.id_to_stem(event["documentKey"]["_id"])
            batch.changes.append(Change(DELETE, coll, stem))
            batch.images[(coll, stem)] = None
        elif op == "drop":
            batch.changes.append(Change(DROP, coll))
            self._forget(batch, coll)
        # other operation types (create, createIndexes, modify...) come only with
        # showExpandedEvents, which the capture does not ask for

    def _rename(self, batch: Batch, old: str | None, to: dict[str, Any]) -> None:
        """The old name dropped, the new one copied from the source as it is now (later
        events of it follow in the stream)."""
        if old is not None and self.spec.wants(old):
            batch.changes.append(Change(DROP, old))
            self._forget(batch, old)
        new = to.get("coll")
        if to.get("db") == self.spec.db and new and self.spec.wants(new):
            batch.changes.append(Change(DROP, new))
            self._forget(batch, new)
            for doc in self._scan(new):
                self._put(batch, new, doc)

    def _put(self, batch: Batch, coll: str, raw: dict[str, Any] | None) -> None:
        if raw is None:
            return
        doc = prepare(raw, None)
        stem = codec.id_to_stem(doc["_id"])
        batch.changes.append(Change(PUT, coll, stem, doc, prepared=True))
        batch.images[(coll, stem)] = doc

    def _update(self, batch: Batch, coll: str, event: dict[str, Any]) -> None:
        """The document right after the update: the pre-image with the update applied
        when the source keeps pre-images, else the document the server looked up (which
        may already include later writes: docs/capture.md), else the capture's own last
        image of it with the update applied."""
        desc = event.get("updateDescription") or {}
        before = event.get("fullDocumentBeforeChange")
        if before is not None:
            self._put(batch, coll, apply_update(before, desc))
            return
        if event.get("fullDocument") is not None:
            self._put(batch, coll, event["fullDocument"])
            return
        stem = codec.id_to_stem(event["documentKey"]["_id"])
        own = batch.images.get((coll, stem), ...)
        if own is ... and self._writing is not None:
            own = self._writing[1].images.get((coll, stem), ...)
        if own is ...:
            self._settle()  # the branch must hold the batch being written
            try:
                own = self.repo.get(self.branch, coll, stem).doc
            except NotFound:
                own = None
        if own is None:
            log.warning("update of %s %s: no pre-image, no current document and no earlier version; skipped (a later event has it)", coll, stem)
            return
        self._put(batch, coll, apply_update(own, desc))

    def _forget(self, batch: Batch, coll: str) -> None:
        for key in [k for k in batch.images if k[0] == coll]:
            batch.images[key] = None

    def _branch_collections(self) -> list[str]:
        return [c for c in self.repo.collections(self.branch) if self.spec.wants(c)]

    def _scan(self, coll: str) -> Iterator[dict[str, Any]]:
        yield from self.source[coll].find().sort("_id", 1).batch_size(1000)

    # ------------------------------------------------------------------ writing

    def _write(self, batch: Batch) -> None:
        """Append a batch as one transaction whose commit record holds its resume point;
        then move the record's hint."""
        txn = new_bundle_id()
        self.record.update(txn=txn)
        commit = {"capture": {"pos": batch.pos, "events": batch.events, "source_time": batch.newest}}
        slot = self.repo.apply(
            self.branch,
            batch.changes,
            kind="capture",
            message=f"capture of {self.spec.label}",
            txn=txn,
            commit=commit,
            direct=False,
            bulk_min=self.options.bulk_min,
        )
        self._done(batch, slot, "batch", len(batch.changes))

    def _done(self, batch: Batch, slot: int | None, what: str, changes: int) -> None:
        """After a commit (or a batch that changed nothing, whose resume point may then
        move without one: nothing it read is lost by replaying it)."""
        slot = slot if slot is not None else self.record.doc.get("slot")
        done = now()
        lag = (done - batch.oldest).total_seconds() if batch.oldest else 0.0
        self.record.update(
            pos=batch.pos,
            txn=None,
            slot=slot,
            state="following",
            message="",
            applied=done,
            event_time=batch.newest,
            lag_s=round(lag, 3),
            events=self.record.doc.get("events", 0) + batch.events,
            batches=self.record.doc.get("batches", 0) + 1,
        )
        newest = round((done - batch.newest).total_seconds(), 3) if batch.newest else None
        self.report(
            {
                "event": what,
                "events": batch.events,
                "changes": changes,
                "slot": slot,
                "source_time": batch.newest,
                "lag_s": round(lag, 3),
                "lag_newest_s": newest,
            }
        )
