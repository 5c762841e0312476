"""Kernel cache invalidation, off the request loop.

``pyfuse3.invalidate_inode`` asks the kernel to drop a file's cached pages, and the
kernel does it under the pages' locks.  A request the daemon has not answered yet can
hold one of those locks (a read waiting for its reply, a write of the same file), so a
call made on the trio thread waits for a reply only the trio thread can send: the whole
mount hangs.  Every invalidation therefore goes through this queue, served by one thread
of its own; handlers only enqueue and never wait.  The thread may block for as long as
the kernel needs; the loop keeps answering the requests it is waiting for.

Only changes the kernel did not make itself are invalidated (a committed file rendered
differently from what was written, a rejected write the kernel already cached, a size
learnt late), as s3ql does.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

import pyfuse3

log = logging.getLogger(__name__)

_Job = tuple[str, int, bytes]


class Invalidator:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending: set[_Job] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start serving the queue; call after ``pyfuse3.init``."""
        self._thread = threading.Thread(target=self._run, name="argonfs-invalidate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the jobs queued so far; does not wait for a kernel that is stuck."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=1.0)
            self._thread = None

    def inode(self, ino: int, *, attr_only: bool = False) -> None:
        """Drop the kernel's cached attributes (and pages, unless ``attr_only``) of a file."""
        self._put(("attr" if attr_only else "inode", ino, b""))

    def entry(self, parent_ino: int, name: str) -> None:
        """Drop the kernel's cached lookup of ``name`` in a directory."""
        self._put(("entry", parent_ino, os.fsencode(name)))

    def _put(self, job: _Job) -> None:
        if self._thread is None:
            return  # not serving (handler-level tests): nothing is cached in a kernel
        with self._lock:
            if job in self._pending:
                return
            self._pending.add(job)
        self._queue.put(job)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                self._pending.discard(job)
            kind, ino, name = job
            try:
                if kind == "entry":
                    pyfuse3.invalidate_entry(ino, name)
                else:
                    pyfuse3.invalidate_inode(ino, attr_only=kind == "attr")
            except OSError as exc:  # ENOENT: the kernel had already forgotten it
                log.debug("invalidate %s %d %r: %s", kind, ino, name, exc)
            except Exception:
                log.exception("invalidate %s %d %r failed", kind, ino, name)
