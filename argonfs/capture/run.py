"""The capture loop: a branch kept in step with a source database's change stream.

A first run (or ``--resync``) opens the change stream at the source's current time,
copies what differs between the source and the branch, applies the events that arrived
meanwhile, and commits the whole as one transaction.  Then each batch of events (at most
``batch_size`` events or ``batch_time`` seconds, never splitting a source transaction)
is one transaction whose commit record carries the resume point it ends at.  Why that
is exactly once: state.py.  Event to version: docs/capture.md.

This module is the loop itself: the capture claimed and released, the branch checked,
the resume point recovered, retries while the source is down, and the stream followed
batch by batch; events into batches and batches into the branch are batches.py, the
first copy copy.py.  Blocking code (pymongo on both sides); signals set a flag that the
loop reads between events.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from argonfs.capture.batches import BEAT_EVERY, Stopped
from argonfs.capture.copy import FirstCopy, Interrupted
from argonfs.errors import Conflict, NotFound, StoreUnavailable

log = logging.getLogger(__name__)

HISTORY_LOST = 286  # ChangeStreamHistoryLost
#: the longest wait between two attempts to reach a source (or the store) that is down;
#: shorter than the lease, which each attempt renews
MAX_BACKOFF = 15.0


class Capture(FirstCopy):
    """One capture of ``spec`` into branch ``branch`` of ``repo``; ``report`` receives a
    dict per committed batch (and per retry)."""

    # ------------------------------------------------------------------ the process

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Capture until stopped (SIGTERM/SIGINT: the batch in flight is finished), or
        with ``once`` until caught up with the moment it started.  Raises ``Stopped``
        when the source says the capture cannot go on, or another ArgonError."""
        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
        source = {"shown": self.spec.shown, "label": self.spec.label, "db": self.spec.db, "collection": self.spec.collection, "only": sorted(self.spec.only)}
        try:
            self.repo.info()  # an argonfs repository (run 'argonfs init' first)
            rec = self.record.claim(source)
            try:
                self._check_branch(rec)
                self._follow()
            except Stopped as exc:
                self.record.release(exc.state, str(exc))
                raise
            except BaseException as exc:
                self.record.release("failed", f"{type(exc).__name__}: {exc}")
                raise
            self.record.release("stopped", "stopped by a signal" if self.stopping.is_set() else "caught up (--once)")
        finally:
            self.source.client.close()
            for s, handler in old.items():
                signal.signal(s, handler)

    def _check_branch(self, rec: dict[str, Any]) -> None:
        """Whether the branch is this capture's: one it created (the record names its
        id), or a new one.  A record of a deleted branch of the same name starts over;
        an existing branch with documents that no capture wrote is refused, since a
        capture makes it equal to the source."""
        try:
            bid = self.repo.branch(self.branch).id
        except NotFound:
            bid = None
        if rec.get("bid") is not None and rec["bid"] != bid:
            log.info("branch %s was deleted since its capture's last run: starting over", self.branch)
            self.record.update(bid=None, pos=None, txn=None, state="copying", message="", event_time=None, lag_s=None, events=0, batches=0)
            rec = self.record.doc
        elif rec.get("state") in ("invalidated", "dropped", "history-lost") and not self.options.resync:
            raise Stopped(rec.get("message") or f"the capture of {self.branch!r} stopped; run it again with --resync", rec["state"])
        if rec.get("bid") is None and bid is not None and self.repo.collections(self.branch):
            raise Conflict(
                f"branch {self.branch!r} already holds documents, which a capture would replace with the source's: "
                "capture into a new branch (it is created empty), or delete this one first"
            )

    def _recover(self) -> dict[str, Any] | None:
        """The resume point of the last batch that became visible (None: none did)."""
        doc = self.record.coll.find_one({"_id": self.branch}) or {}
        pos: dict[str, Any] | None = doc.get("pos")
        txn = doc.get("txn")
        if txn:
            commit = self.repo.commit_record(self.branch, txn)
            if commit is not None:
                pos = commit["capture"]["pos"]
                self.record.update(pos=pos, txn=None, slot=commit["s"])
            else:
                self.record.update(txn=None)
        return pos

    def _follow(self) -> None:
        backoff = 1.0
        resync = self.options.resync
        while not self.stopping.is_set():
            try:
                pos = self._recover()
                if resync or pos is None:
                    self._first_copy()
                    resync = False
                    if self.options.once:
                        return
                    continue
                self._stream_from(pos)
                return
            except Interrupted:
                log.info("stopped during the copy; nothing of it was committed")
                return
            except (ConnectionFailure, StoreUnavailable) as exc:
                self._down(exc, backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
            except OperationFailure as exc:
                if exc.code == HISTORY_LOST:
                    raise Stopped(
                        f"the source's oplog no longer holds the capture's resume point ({(exc.details or {}).get('errmsg', exc)}); "
                        f"nothing past it was applied. Run 'argonfs capture {self.spec.label} --branch {self.branch} --resync' "
                        "to take a fresh copy that writes only what differs",
                        "history-lost",
                    ) from None
                message = (exc.details or {}).get("errmsg") or str(exc).split(", full error:")[0]
                if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
                    raise StoreUnavailable(f"{self.spec.shown}: {message}") from None
                raise Stopped(f"{self.spec.shown}: {message}") from None

    def _down(self, exc: Exception, wait: float) -> None:
        error = str(exc).split(", Timeout:")[0].split(", full error:")[0]  # not pymongo's topology dump
        message = f"source or store unavailable ({error}); retrying in {wait:.0f} s"
        log.info("%s", message)
        self.report({"event": "retry", "error": error, "retry_in_s": wait})
        with contextlib.suppress(PyMongoError, StoreUnavailable):
            self.record.update(state="source-down", message=message)
        self.stopping.wait(wait)

    # ------------------------------------------------------------------ the stream

    def _stream_from(self, pos: dict[str, Any]) -> None:
        """Follow the stream from ``pos``: each batch is written on a thread of its own
        while the next one is read (writes stay sequential, in stream order)."""
        at = {"start_after": pos["token"]} if "token" in pos else {"start_at_operation_time": pos["at"]}
        self.start_time = self._operation_time()
        with self._watch(**at) as stream, ThreadPoolExecutor(1, thread_name_prefix="argonfs-capture") as pool:
            self.record.update(state="following", message="")
            last_beat = time.monotonic()
            try:
                while True:
                    batch, idle = self._collect(stream)
                    if batch.events:
                        self._settle()
                        self._writing = (pool.submit(self._write, batch), batch)
                        last_beat = time.monotonic()
                    if batch.stop:
                        self._settle()
                        raise self._stopped(batch.stop)
                    if self.stopping.is_set():
                        return
                    if self.options.once and (idle or (batch.cluster is not None and batch.cluster >= self.start_time)):
                        return
                    if time.monotonic() - last_beat > BEAT_EVERY:
                        self._settle()
                        self.record.update(state="following")
                        last_beat = time.monotonic()
            finally:
                self._settle()
