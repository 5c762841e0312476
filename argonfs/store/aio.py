"""The repository for async code: every blocking call runs in a worker thread.

One ``trio.CapacityLimiter`` bounds how many threads talk to MongoDB at once, so many
readers are served concurrently while a slow or unreachable server cannot exhaust
the process.  The client's timeouts (store/mongo.py) make every thread come back.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from argonfs.store.repository import Repository

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_THREADS = 16


class AsyncRepository:
    def __init__(self, repo: Repository, threads: int = DEFAULT_THREADS) -> None:
        self.repo = repo
        self.limiter = trio.CapacityLimiter(threads)
        self._authors: dict[str, Repository] = {}

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking function in a worker thread behind the limiter."""
        return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)

    async def call(self, method: str, *args: Any, author: str | None = None, **kwargs: Any) -> Any:
        """Call a Repository method by name, writing as ``author`` when given."""
        start = time.perf_counter()
        try:
            return await self.run(getattr(self.as_author(author), method), *args, **kwargs)
        finally:
            log.debug("store %s took %.1f ms", method, (time.perf_counter() - start) * 1000)

    def as_author(self, author: str | None) -> Repository:
        if author is None:
            return self.repo
        repo = self._authors.get(author)
        if repo is None:
            repo = self._authors[author] = self.repo.with_author(author)
        return repo
