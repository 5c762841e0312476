"""A content-addressed, size-bounded cache of remote objects on local disk.

Every key names immutable bytes (a chunk by its hash, a block of a pack by the pack's
hash and the block's number), so an entry is never stale and the cache never needs
invalidation.  Files are written to a temporary name and renamed, so processes sharing
one directory never see a partial entry; reading an entry bumps its mtime, and when the
cache grows past its bound the least recently used files are removed until it is back
under 90% of it.  The bound counts files as well as bytes: each file counts at least
``FILE_COST`` (the 4 KiB block it takes on disk), so a flood of small files fills it as it
fills the disk, and nothing empty is ever stored.  A file another process removed is
simply fetched again.  Entries are 0600 in a 0700 directory (argonfs/config.py).  Blocking.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from pathlib import Path

from argonfs.config import data_dir, private_dir, write_private

log = logging.getLogger(__name__)

DEFAULT_SIZE = 1 << 30
#: what a file counts against the bound at least: the block it takes on disk
FILE_COST = 4096


def cache_dir(url: str) -> Path:
    """Where the processes reading one remote (its mounts, ``argonfs serve --remote``)
    cache its chunks and pack blocks, by URL: they share it, since every entry is
    immutable and written atomically."""
    return data_dir() / "remote-cache" / hashlib.sha256(url.encode()).hexdigest()[:16]


def cost(size: int) -> int:
    """What a file of ``size`` bytes counts against the cache's bound."""
    return max(size, FILE_COST)


class Cache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_SIZE) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        private_dir(root)
        self._used = sum(cost(e.stat().st_size) for e in os.scandir(root) if e.is_file())

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        return data

    def discard(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def put(self, key: str, data: bytes) -> None:
        if not data or cost(len(data)) > self.max_bytes:
            return
        try:
            write_private(self._path(key), data)
        except OSError as exc:
            log.warning("cache: cannot store %s in %s: %s", key, self.root, exc)
            return
        with self._lock:
            self._used += cost(len(data))
            if self._used > self.max_bytes:
                self._evict()

    def _evict(self) -> None:
        files = []
        for e in os.scandir(self.root):
            with contextlib.suppress(FileNotFoundError):
                st = e.stat()
                files.append((st.st_mtime, st.st_size, e.path))
        used = sum(cost(size) for _, size, _ in files)
        target = self.max_bytes * 9 // 10
        for _mtime, size, path in sorted(files):
            if used <= target:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                used -= cost(size)
        self._used = used
        log.debug("cache: evicted down to %d bytes (files counted at least %d) in %s", used, FILE_COST, self.root)
