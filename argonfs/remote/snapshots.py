"""The mount's view of a remote (argonfs/snapshot.py's interfaces), with no MongoDB.

``RemoteCatalog`` shows a remote's bundles and labels; a bundle id or a label resolves
to a ``RemoteSnapshot``, a read-only view of one bundle's descriptor whose listings
and bodies are read lazily through ``Remote`` (remote/reading.py: chunks and pack blocks,
each checked against its hash and kept in the on-disk cache).  The filesystem serves
it exactly as it serves a MongoDB bundle.

A remote changes only by pushing to it, so every change the mount could ask for
(labels, branches, the read log) is ``ReadOnly``; it has no branches.  Descriptors never
change and are read once (``Remote`` keeps them); labels are read again on every call,
so a label moved by a push shows once the mount's label timeout has passed.

Listing a collection reads its chunks ``AHEAD`` at a time in parallel, so a listing
waits for about one object-store round trip per ``AHEAD`` chunks.  Blocking, like the
rest of remote/; the mount calls it from worker threads.

A remote is untrusted input: a name the mount cannot show (a collection ``..``, a
document stem ``.``, a name with ``/`` or NUL, any name the store would refuse), a label
that names no bundle id and an object that is not a bundle's descriptor are skipped, each
logged once (``Remote.skip``), and the rest is listed; a pull refuses them instead.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from argonfs import codec
from argonfs.errors import Corrupt, InvalidName, NotFound, ReadOnly, WrongFormat
from argonfs.naming import check_collection_name, is_bundle_id
from argonfs.remote.cache import DEFAULT_SIZE, Cache, cache_dir
from argonfs.remote.chunks import RemoteEntry
from argonfs.remote.format import ChunkRef, Descriptor, LabelSlot
from argonfs.remote.objects import open_store
from argonfs.remote.reading import Remote
from argonfs.snapshot import Label, Listed

#: chunks of a collection's listing fetched ahead of the reader, per layer
AHEAD = 8
#: threads fetching chunks and descriptors in parallel
FETCHERS = 8


class RemoteCatalog:
    """The bundles and labels of one remote, read-only."""

    def __init__(self, remote: Remote, *, fetchers: int = FETCHERS) -> None:
        self.remote = remote
        self.url = remote.url
        self.pool = ThreadPoolExecutor(fetchers, thread_name_prefix="argonfs-remote")

    @classmethod
    def open(cls, url: str, cache_size: int = DEFAULT_SIZE) -> RemoteCatalog:
        """The catalog of the remote at ``url``, its objects cached on disk
        (``cache_dir``, shared by every process reading that remote), checked: a remote
        that is missing, unreachable or of another format fails here."""
        store = open_store(url)
        remote = Remote(store, Cache(cache_dir(store.url), cache_size))
        remote.check_format()
        return cls(remote)

    def close(self) -> None:
        """Stop the fetching threads (fetches in flight finish on their own)."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _refuse(self, what: str) -> ReadOnly:
        return ReadOnly(f"cannot {what}: remote {self.url} is mounted read-only (a remote changes only by pushing to it)")

    def resolve(self, ref: str) -> RemoteSnapshot:
        """A bundle id (kind "bundle") or a label's current bundle (kind "label"), in
        the one order of ``names.resolve_name`` (a remote has no branches)."""
        if not ref or "/" in ref or ref in (".", ".."):
            raise NotFound(f"remote {self.url} has no bundle or label {ref!r}")
        bundle_id, label = self.remote.resolve(ref)
        return RemoteSnapshot(self, self.remote.descriptor(bundle_id), ref, "bundle" if label is None else "label")

    def branch_names(self) -> list[str]:
        return []  # a remote holds bundles and labels only: /branches is empty

    def _time(self, bundle_id: str) -> int | None:
        """A bundle's time; 0 (and a warning) for one whose descriptor cannot be read,
        which is still listed (opening it answers EIO); None for one that vanished."""
        try:
            return self.remote.descriptor(bundle_id).time_ns
        except NotFound:
            return None
        except (Corrupt, WrongFormat) as exc:
            self.remote.warn_once(f"bundle {bundle_id}", str(exc))
            return 0

    def bundles(self) -> list[tuple[str, int]]:
        ids = self.remote.bundle_ids()
        return [(b, t) for b, t in zip(ids, self.pool.map(self._time, ids), strict=True) if t is not None]

    def _descriptors(self) -> list[Descriptor]:
        def read(bundle_id: str) -> Descriptor | None:
            try:
                return self.remote.descriptor(bundle_id)
            except (NotFound, Corrupt, WrongFormat):
                return None

        return [d for d in self.pool.map(read, self.remote.bundle_ids()) if d is not None]

    def labels(self) -> list[Label]:
        return [Label(s.name, s.bundle, s.time_ns) for s in self.label_slots() if s.bundle is not None]

    def label(self, name: str) -> Label:
        slot = self.label_slot(name)
        assert slot.bundle is not None
        return Label(name, slot.bundle, slot.time_ns)

    def label_slots(self) -> list[LabelSlot]:
        """The newest slot of every label (its bundle, when and by whom it was set),
        read in parallel; a deleted label is left out, an unreadable one skipped (and
        logged once)."""

        def read(name: str) -> LabelSlot | None:
            try:
                return self.label_slot(name)
            except NotFound:
                return None  # deleted (its newest slot is a deletion)
            except (Corrupt, WrongFormat) as exc:
                self.remote.skip(f"label {name!r}", str(exc))
                return None

        return [s for s in self.pool.map(read, self.remote.label_names()) if s is not None]

    def label_slot(self, name: str) -> LabelSlot:
        """A label's newest slot, which sets it to a bundle id (``Corrupt`` otherwise)."""
        slot = self.remote.label(name)
        assert slot.bundle is not None
        if not is_bundle_id(slot.bundle):  # its link would point anywhere
            raise Corrupt(f"remote {self.url}: label {name!r} names {slot.bundle[:40]!r}, which is not a bundle id")
        return slot

    def set_label(self, name: str, bundle: str, *, author: str | None) -> None:
        raise self._refuse(f"set label {name!r}")

    def delete_label(self, name: str, *, author: str | None) -> None:
        raise self._refuse(f"delete label {name!r}")

    def create_branch(self, name: str, *, author: str | None) -> None:
        raise self._refuse(f"create branch {name!r}")

    def delete_branch(self, name: str) -> None:
        raise self._refuse(f"delete branch {name!r}")

    def record_reads(self, reads: list[dict[str, Any]]) -> None:
        raise self._refuse("keep a read log (it is stored in MongoDB)")

    def usage(self) -> dict[str, int]:
        """What statfs reports as used: the bytes this mount keeps on local disk (its
        cache), and the documents of every bundle (the files it shows)."""
        cache = self.remote.cache
        used = 0
        if cache is not None:
            for e in os.scandir(cache.root):
                try:
                    used += e.stat().st_size if e.is_file() else 0
                except FileNotFoundError:
                    continue  # evicted by another process sharing the cache
        return {"bytes": used, "objects": sum(sum(d.counts.values()) for d in self._descriptors())}


class RemoteSnapshot:
    """One bundle of a remote, as its descriptor describes it; never changes."""

    def __init__(self, catalog: RemoteCatalog, descriptor: Descriptor, ref: str, kind: str) -> None:
        self.catalog = catalog
        self.descriptor = descriptor
        self.ref = ref
        self.kind = kind
        self.time_ns: int | None = descriptor.time_ns
        seq = descriptor.extra.get("seq")
        self.seq: int | None = seq if type(seq) is int and 0 <= seq < 1 << 63 else 0
        self._collections: list[str] | None = None
        self._shown: frozenset[str] = frozenset()

    @property
    def remote(self) -> Remote:
        return self.catalog.remote

    def pinned(self) -> RemoteSnapshot:
        return self  # a bundle never changes (a label's snapshot is the bundle it named)

    def collections(self) -> list[str]:
        """The collections the mount can show: names a collection may have
        (``check_collection_name``); others are skipped and logged once."""
        if self._collections is None:
            shown = []
            for name in sorted(self.descriptor.collections):
                try:
                    shown.append(check_collection_name(name))
                except InvalidName as exc:
                    self.remote.skip(f"collection {name[:100]!r} of bundle {self.descriptor.bundle}", str(exc))
            self._collections, self._shown = shown, frozenset(shown)
        return self._collections

    def collection_exists(self, collection: str) -> bool:
        if self._collections is None:
            self.collections()
        return collection in self._shown

    def _layers(self, collection: str) -> list[list[ChunkRef]]:
        if not self.collection_exists(collection):
            raise NotFound(f"no collection {collection!r} in bundle {self.descriptor.bundle}")
        return self.descriptor.collections[collection]

    def entries(self, collection: str, after: str = "") -> Iterator[RemoteEntry]:
        return self._stream(collection, self._layers(collection), after)

    def _stream(self, collection: str, layers: list[list[ChunkRef]], after: str) -> Iterator[RemoteEntry]:
        """The collection's documents whose names a document may have (``Remote.shown``);
        the others are skipped and logged once."""
        ahead = _ChunksAhead(self.remote, self.catalog.pool, layers, after)
        boundary = ahead.passed(after)
        for entry in self.remote.entries(self.descriptor, collection, after, shown=True):
            yield entry
            if boundary is not None and entry.stem >= boundary:
                boundary = ahead.passed(entry.stem)

    def stat(self, collection: str, stem: str) -> RemoteEntry:
        self._layers(collection)
        if not codec.is_stem(stem):
            raise NotFound(f"no document {stem[:100]!r} in bundle {self.descriptor.bundle}/{collection}")
        return self.remote.stat(self.descriptor, collection, stem)

    def bodies(self, collection: str, entries: list[Listed]) -> list[bytes]:
        listed = [e for e in entries if isinstance(e, RemoteEntry)]
        if len(listed) != len(entries):
            raise TypeError("RemoteSnapshot.bodies takes the entries its own listings returned")
        return self.remote.bodies(listed)


class _ChunksAhead:
    """Keeps the next ``AHEAD`` chunks of each layer of a listing on their way, and
    waits for the one the listing reads next, so ``Remote.entries`` finds each chunk
    fetched (and in memory) instead of fetching it a second time."""

    def __init__(self, remote: Remote, pool: ThreadPoolExecutor, layers: list[list[ChunkRef]], after: str) -> None:
        self.remote = remote
        self.pool = pool
        self.layers = layers
        self.lasts = [[r.last for r in layer] for layer in layers]
        self.pos = [bisect.bisect_right(lasts, after) if after else 0 for lasts in self.lasts]
        self.futures: list[dict[int, Future[Any]]] = [{} for _ in layers]
        self.started = False

    def passed(self, stem: str) -> str | None:
        """The listing has returned ``stem``: the chunk holding the names after it in each
        layer is fetched before the listing goes on, the following ones are on their way.
        Returns the name at which to call again (the end of the nearest chunk), None
        when every chunk is on its way."""
        for i, lasts in enumerate(self.lasts):
            p = self.pos[i]
            while p < len(lasts) and lasts[p] <= stem:
                p += 1
            if self.started and p == self.pos[i]:
                continue  # still inside the same chunk of this layer
            self.pos[i] = p
            futures = self.futures[i]
            for j in [j for j in futures if j < p]:
                del futures[j]
            layer = self.layers[i]
            try:
                for j in range(p, min(p + AHEAD, len(layer))):
                    if j not in futures:
                        futures[j] = self.pool.submit(self.remote.chunk, layer[j])
            except RuntimeError:  # the pool is shut down (unmounting): the listing reads alone
                break
            if p in futures:
                futures[p].exception()  # wait; an error is raised by the listing's own read
        self.started = True
        ends = [lasts[p] for lasts, p in zip(self.lasts, self.pos, strict=True) if p < len(lasts)]
        return min(ends) if ends else None
