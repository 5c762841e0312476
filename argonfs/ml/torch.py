"""PyTorch datasets over a snapshot's collection.  Needs ``argonfs[torch]``.

``SnapshotDataset`` is map-style: the collection is listed once (names, sizes, content
hashes, version slots; no bodies), item ``i`` is the ``i``-th document in name order,
and bodies are fetched in batches of ``fetch_size`` per round trip and kept in an LRU
cache keyed by version slot (a version's body never changes).  The ``DataLoader`` asks
for a whole batch at once (``__getitems__``), so a shuffled epoch costs one round trip
per batch, not per item.  ``SnapshotIterableDataset`` streams the documents in listing
order with one page of bodies in memory, for collections larger than memory.
``ShardFileDataset`` reads a mount's shard view instead (``.shards/<collection>/``,
docs/mount.md): a few large files, no client at all.

Both are safe with ``DataLoader(num_workers>0)``: a worker, forked or spawned, opens a
client of its own on first use (``Pin.repo``); none is ever shared.  Each worker
has its own cache, so keep workers across epochs (``persistent_workers=True``) for the
cache to pay off.  Blocking (pymongo).
"""

from __future__ import annotations

import os
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import orjson
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info

from argonfs.ml.pinning import Pin

#: bodies per round trip; a listing page (store/engine/versions.py) is 1000
FETCH_SIZE = 512
#: rendered bytes of bodies a dataset keeps per process
CACHE_BYTES = 256 << 20

Transform = Callable[[dict[str, Any]], Any]


class SnapshotDataset(Dataset[Any]):
    """Map-style dataset of one collection of a pinned snapshot, in name order.

    Item ``i`` is ``transform(doc)`` (default: the document as a dict).  ``names[i]``
    is its file-name stem.
    """

    def __init__(
        self, snapshot: Pin, collection: str, *, transform: Transform | None = None, fetch_size: int = FETCH_SIZE, cache_bytes: int = CACHE_BYTES
    ) -> None:
        self.snapshot = snapshot
        self.collection = collection
        self.transform = transform
        self.fetch_size = fetch_size
        self.cache_bytes = cache_bytes
        self._entries = list(snapshot.entries(collection))  # the one listing
        #: version slot -> (document, rendered size), least recently used first
        self._cache: OrderedDict[tuple[Any, int], tuple[dict[str, Any], int]] = OrderedDict()
        self._cached_bytes = 0

    @property
    def names(self) -> list[str]:
        return [e.stem for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def preload(self) -> SnapshotDataset:
        """Fetch every body not cached yet (``fetch_size`` per round trip), as long as
        it fits in ``cache_bytes``.  Workers forked afterwards start with the whole cache (copy on
        write), so even their first epoch reads nothing from the server."""
        for start in range(0, len(self._entries), self.fetch_size):
            block = self._entries[start : start + self.fetch_size]
            if self._cached_bytes + sum(e.size for e in block if e.version not in self._cache) > self.cache_bytes:
                break
            self._items([], range(start, start + len(block)))
        return self

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self._entries)
        if not 0 <= index < len(self._entries):
            raise IndexError(f"index {index} out of range for {len(self._entries)} documents")
        start = index - index % self.fetch_size  # read ahead the aligned block of this item
        return self._items([index], range(start, min(start + self.fetch_size, len(self._entries))))[0]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """A batch at once (what ``DataLoader`` calls): one round trip per ``fetch_size``
        documents not in the cache."""
        return self._items(indices, indices)

    def _items(self, indices: list[int], prefetch: Any) -> list[Any]:
        cache = self._cache  # a forked worker starts from a copy of its parent's: still valid
        missing = [self._entries[i] for i in prefetch if self._entries[i].version not in cache]
        if missing:
            repo = self.snapshot.repo()
            for start in range(0, len(missing), self.fetch_size):
                chunk = missing[start : start + self.fetch_size]
                for entry, fetched in zip(chunk, repo.bodies(self.collection, chunk), strict=True):
                    cache[entry.version] = (fetched.doc, entry.size)
                    self._cached_bytes += entry.size
        out = []
        for i in indices:
            version = self._entries[i].version
            doc = cache[version][0]
            cache.move_to_end(version)
            out.append(doc if self.transform is None else self.transform(doc))
        while self._cached_bytes > self.cache_bytes and len(cache) > len(indices):
            self._cached_bytes -= cache.popitem(last=False)[1][1]
        return out

    def __getstate__(self) -> dict[str, Any]:
        # a spawned worker gets the listing, not the cache
        state = dict(self.__dict__)
        state.update(_cache=OrderedDict(), _cached_bytes=0)
        return state


class SnapshotIterableDataset(IterableDataset[Any]):
    """The documents of one collection of a pinned snapshot, streamed in name order,
    ``page_size`` bodies per round trip and one page in memory.  With ``num_workers=N``
    worker ``w`` yields pages ``w, w+N, ...``, so a ``DataLoader`` whose ``batch_size``
    equals ``page_size`` keeps the listing order."""

    def __init__(self, snapshot: Pin, collection: str, *, transform: Transform | None = None, page_size: int = FETCH_SIZE) -> None:
        if collection not in snapshot.collections:
            snapshot.entries(collection)  # raises NotFound
        self.snapshot = snapshot
        self.collection = collection
        self.transform = transform
        self.page_size = page_size

    def __len__(self) -> int:
        return self.snapshot.count if self.snapshot.collections == (self.collection,) else sum(1 for _ in self.snapshot.entries(self.collection))

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        repo = self.snapshot.repo()
        listing = self.snapshot.entries(self.collection)
        page_no = 0
        while page := list(islice(listing, self.page_size)):
            if page_no % workers == worker:
                for doc in repo.bodies(self.collection, page):
                    yield doc.doc if self.transform is None else self.transform(doc.doc)
            page_no += 1


#: documents per shard file of a mount's shard view (argonfs/fs/shards.py: SHARD_DOCS)
SHARD_DOCS = 1000


class ShardFileDataset(Dataset[Any]):
    """Map-style dataset over the shard files of a collection in a mount, e.g.
    ``/mnt/argon/labels/production/.shards/papers`` (or any directory of such files, a
    copy on local disk): item ``i`` is document ``i`` in listing order, as parsed JSON
    (Extended JSON as the files hold it: ``{"$oid": ...}``), or ``transform(doc)``.

    Every shard but the last holds ``per_shard`` documents (the mount's is fixed at
    1000), so only the last one is read to count.  A shard is parsed whole on first
    access of one of its items; the last ``cache_shards`` parsed are kept per process.
    A shuffled ``DataLoader`` over more shards than that re-reads shards: pass
    ``sampler=ShardSampler(ds)``, which shuffles the shards and the items within each.
    Needs no client: ``DataLoader`` workers, forked or spawned, just open files."""

    def __init__(self, path: str | os.PathLike[str], *, transform: Transform | None = None, per_shard: int = SHARD_DOCS, cache_shards: int = 32) -> None:
        self.path = os.fspath(path)
        # 00000.json ... 99999.json, 100000.json: by length, then name, is listing order
        names = sorted((name for name in os.listdir(self.path) if name.endswith(".json")), key=lambda name: (len(name), name))
        self.files = [os.path.join(self.path, name) for name in names]
        self.transform = transform
        self.per_shard = per_shard
        self.cache_shards = max(cache_shards, 1)
        self._shards: OrderedDict[int, list[Any]] = OrderedDict()
        self._len = (len(self.files) - 1) * per_shard + len(self._shard(len(self.files) - 1)) if self.files else 0

    def __len__(self) -> int:
        return self._len

    def _shard(self, n: int) -> list[Any]:
        docs = self._shards.get(n)
        if docs is not None:
            self._shards.move_to_end(n)
            return docs
        with open(self.files[n], "rb") as f:
            docs = orjson.loads(f.read())
        if not isinstance(docs, list) or len(docs) > self.per_shard or (n < len(self.files) - 1 and len(docs) != self.per_shard):
            raise ValueError(f"{self.files[n]}: not a shard of {self.per_shard} documents")
        self._shards[n] = docs
        while len(self._shards) > self.cache_shards:
            self._shards.popitem(last=False)
        return docs

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} documents")
        doc = self._shard(index // self.per_shard)[index % self.per_shard]
        return doc if self.transform is None else self.transform(doc)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_shards"] = OrderedDict()  # a spawned worker reads its own shards
        return state


class ShardSampler(Sampler[int]):
    """Indices of a ``ShardFileDataset`` shard by shard: the shards in a random order,
    the items of each shuffled, so a loader parses each shard once per epoch."""

    def __init__(self, dataset: ShardFileDataset, *, seed: int | None = None) -> None:
        self.dataset = dataset
        self._random = random.Random(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        n, per = len(self.dataset), self.dataset.per_shard
        shards = list(range((n + per - 1) // per))
        self._random.shuffle(shards)
        for s in shards:
            items = list(range(s * per, min((s + 1) * per, n)))
            self._random.shuffle(items)
            yield from items
