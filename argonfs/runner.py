"""Blocking calls from trio: the mount runs every catalog and snapshot call in a worker
thread (argonfs/snapshot.py's ``Runner``).

One ``trio.CapacityLimiter`` bounds how many threads talk to the backend at once
(MongoDB, or a remote's object store), so many readers are served concurrently while a
slow or unreachable server cannot exhaust the process; the backends' own timeouts make
every thread come back.  ``run`` is typed: ``await runner.run(snapshot.entries,
collection)`` checks the call against ``entries``' own signature.  No backend is
imported here, so a remote mount never loads pymongo.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import trio

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_THREADS = 16


class ThreadRunner:
    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.limiter = trio.CapacityLimiter(threads)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking function in a worker thread behind the limiter."""
        start = time.perf_counter()
        try:
            return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)
        finally:
            log.debug("%s took %.1f ms", getattr(fn, "__qualname__", fn), (time.perf_counter() - start) * 1000)
