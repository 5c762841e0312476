"""Documents' bytes read from a remote's packs (the format: remote/format.py): a pack is
read a block (``BLOCK``) at a time, each document checked against the pack's real length
as its blocks come (a block that ends before the document does is ``Corrupt``, never kept)
and against its content hash.  Blocking.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from argonfs.errors import Corrupt, NotFound
from argonfs.remote.cache import Cache
from argonfs.remote.chunks import RemoteEntry
from argonfs.remote.format import MAX_BODY, digest, is_int, pack_key
from argonfs.remote.objects import ObjectStore

BLOCK = 4 << 20


class Packs:
    """The packs of one remote, read through an ``ObjectStore``: the last few blocks read
    are kept in memory, and blocks in ``cache`` (disk).  Thread-safe."""

    def __init__(self, store: ObjectStore, cache: Cache | None = None) -> None:
        self.store = store
        self.url = store.url
        self.cache = cache
        #: the last few pack blocks read, so a stream of small reads fetches each once
        self._blocks: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def block(self, pack: str, n: int) -> bytes:
        """Block ``n`` of ``pack`` (shorter only at the pack's end; an empty one is Corrupt)."""
        key = f"pack-{pack}-{n}"
        with self._lock:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
                return data
        data = self.cache.get(key) if self.cache is not None else None
        if not data:  # (an empty block is never kept: one in the cache is not believed)
            try:
                data = self.store.get_range(pack_key(pack), n * BLOCK, BLOCK)
            except NotFound:
                raise Corrupt(f"remote {self.url}: {pack_key(pack)} is missing (a bundle refers to it)") from None
            if not data:  # a short read: the pack ends before this block, and no retry makes it longer
                raise Corrupt(f"remote {self.url}: {pack_key(pack)} ends before byte {n * BLOCK} (a bundle refers past its end)")
            if self.cache is not None:
                self.cache.put(key, data)
        with self._lock:
            self._blocks[key] = data
            while len(self._blocks) > 4:
                self._blocks.popitem(last=False)
        return data

    def forget_block(self, pack: str, n: int) -> None:
        """Drop a block found wrong from memory and the cache, so it is read again."""
        key = f"pack-{pack}-{n}"
        with self._lock:
            self._blocks.pop(key, None)
        if self.cache is not None:
            self.cache.discard(key)

    def bodies(self, entries: list[RemoteEntry]) -> list[bytes]:
        """The documents' bytes, each checked against its hash, reading packs a block
        (4 MiB) at a time; blocks are cached (in memory, and on disk with a cache)."""
        out = []
        for e in entries:
            if not (is_int(e.size, 1, MAX_BODY + 1) and is_int(e.offset)):
                raise Corrupt(
                    f"remote {self.url}: {e.stem[:100]}.json in {pack_key(e.pack)}: {e.size!r:.40} bytes at {e.offset!r:.40} is not a document's place"
                )
            first, last = e.offset // BLOCK, (e.offset + e.size - 1) // BLOCK
            parts = []
            for n in range(first, last + 1):
                block = self.block(e.pack, n)
                parts.append(block)
                if len(block) < BLOCK and n < last:  # the pack's last block, before the document's end
                    self.forget_block(e.pack, n)
                    end = n * BLOCK + len(block)
                    raise Corrupt(
                        f"remote {self.url}: {e.stem[:100]}.json in {pack_key(e.pack)} ends at byte {e.offset + e.size}, past the pack's end at {end}"
                    )
            joined = parts[0] if len(parts) == 1 else b"".join(parts)
            start = e.offset - first * BLOCK
            body = joined[start : start + e.size]
            if len(body) != e.size or digest(body) != e.hash:
                for n in range(first, last + 1):
                    self.forget_block(e.pack, n)
                raise Corrupt(f"remote {self.url}: {e.stem}.json in {pack_key(e.pack)} does not match its hash (corrupted or truncated)")
            out.append(body)
        return out
