"""Reading a remote (the format: remote/format.py): ``Remote``, its marker, bundles,
labels (and setting a label, a slot appended to its history) and manifests, the layers
of a collection merged as they are read; documents' bytes come through remote/packs.py.
What a mount cannot show (an invalid name) is skipped and logged once.  Blocking.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TypeVar

import orjson

from argonfs import codec
from argonfs.errors import Corrupt, InvalidName, NotFound, WrongFormat
from argonfs.naming import check_label_name, is_bundle_id, resolve_name
from argonfs.remote.cache import Cache
from argonfs.remote.chunks import RemoteEntry, decode_chunk, overlay, stem_of
from argonfs.remote.format import (
    FORMAT,
    MARKER,
    MAX_CHUNK,
    MAX_DESCRIPTOR,
    MAX_SMALL,
    ChunkRef,
    Descriptor,
    LabelSlot,
    bundle_key,
    chunk_key,
    digest,
    label_key,
    label_prefix,
)
from argonfs.remote.objects import ObjectStore
from argonfs.remote.packs import Packs

log = logging.getLogger(__name__)

T = TypeVar("T")

#: invalid names logged (each once) before the log stops saying so
MAX_SKIPS_LOGGED = 1000


class Remote:
    """The bundles and labels of one remote, read (and their labels set) through an
    ``ObjectStore``; chunks and pack blocks are cached in ``cache`` (disk) and parsed
    chunks in memory, documents' bytes read through ``packs``.  Thread-safe: the mount calls it from worker threads."""

    def __init__(self, store: ObjectStore, cache: Cache | None = None) -> None:
        self.store = store
        self.url = store.url
        self.cache = cache
        self._descriptors: dict[str, Descriptor] = {}
        self._chunks: OrderedDict[str, list[RemoteEntry | str]] = OrderedDict()
        self.packs = Packs(store, cache)
        self._lock = threading.Lock()
        self._checked = False
        #: what was skipped as invalid and said so in the log (once each, up to a bound)
        self._skipped: set[str] = set()
        #: chunks whose names were all found to be documents' names (``shown``)
        self._shown: set[str] = set()

    def skip(self, what: str, why: str) -> None:
        """Log that ``what`` (an object, a label, a collection, a document) is skipped,
        being invalid."""
        self.warn_once(what, f"skipped: {why}")

    def warn_once(self, what: str, why: str) -> None:
        """Log a warning about ``what`` once per process, not on every listing, for at
        most ``MAX_SKIPS_LOGGED`` names (then one line saying so)."""
        with self._lock:
            if what in self._skipped or len(self._skipped) > MAX_SKIPS_LOGGED:
                return
            self._skipped.add(what)
            full = len(self._skipped) > MAX_SKIPS_LOGGED
        if full:
            log.warning("remote %s: more invalid objects; they are not logged", self.url)
        else:
            log.warning("remote %s: %s: %s", self.url, what, why)

    def _get(self, key: str, limit: int) -> bytes:
        """An object whole, if it is at most ``limit`` bytes (``Corrupt`` otherwise: no
        more than ``limit`` + 1 bytes are read)."""
        data = self.store.get_range(key, 0, limit + 1)
        if len(data) > limit:
            raise Corrupt(f"remote {self.url}: {key} is larger than {limit} bytes, more than such an object can be")
        return data

    # ---- the marker

    def check_format(self, *, create: bool = False) -> None:
        """Refuse a remote of another format; with ``create``, mark an empty one as ours."""
        if self._checked:
            return
        try:
            data = self._get(MARKER, MAX_SMALL)
        except NotFound:
            if not create:
                raise NotFound(f"remote {self.url}: not an argonfs remote (no {MARKER}); push a bundle to it first") from None
            self.store.put_if_absent(MARKER, orjson.dumps({"format": FORMAT, "kind": "argonfs-remote"}))
            data = self._get(MARKER, MAX_SMALL)
        try:
            version = orjson.loads(data).get("format")
        except (orjson.JSONDecodeError, AttributeError):
            raise Corrupt(f"remote {self.url}: {MARKER} is not argonfs JSON") from None
        if version != FORMAT:
            raise WrongFormat(f"remote {self.url} is in remote format {version!r}; this argonfs reads format {FORMAT} (install a matching argonfs)")
        self._checked = True

    # ---- bundles

    def bundle_ids(self) -> list[str]:
        """The bundles: the objects ``bundles/<bundle id>.json``; any other object under
        ``bundles/`` (a nested key, a stray copy) is skipped (and logged once)."""
        self.check_format()
        ids = []
        for o in self.store.list("bundles/"):
            name = o.key[len("bundles/") :]
            if name.endswith(".json") and is_bundle_id(name[: -len(".json")]):
                ids.append(name[: -len(".json")])
            else:
                self.skip(f"object {o.key[:200]!r}", "not a bundle descriptor (bundles/<bundle id>.json)")
        return ids

    def descriptor(self, bundle_id: str) -> Descriptor:
        found = self._descriptors.get(bundle_id)
        if found is not None:
            return found
        self.check_format()
        key = bundle_key(bundle_id)
        try:
            data = self._get(key, MAX_DESCRIPTOR)
        except NotFound:
            raise NotFound(f"remote {self.url} has no bundle {bundle_id!r}") from None
        desc = Descriptor.from_bytes(data, f"remote {self.url}: {key}")
        if desc.bundle != bundle_id:
            raise Corrupt(f"remote {self.url}: {key} describes bundle {desc.bundle!r}")
        self._descriptors[bundle_id] = desc
        return desc

    def has_bundle(self, bundle_id: str) -> bool:
        try:
            self.descriptor(bundle_id)
        except NotFound:
            return False
        return True

    def resolve(self, ref: str) -> tuple[str, str | None]:
        """(bundle id, label or None) for a bundle id or a label, in the one order of
        ``argonfs.snapshot.resolve_name`` (a remote has no branches).  A label naming
        something not of a bundle id's shape is Corrupt: pulled, it would take the place
        of a local name."""

        def bundle(name: str) -> tuple[str, str | None] | None:
            desc = _or_none(self.descriptor, name)
            return None if desc is None else (desc.bundle, None)

        def label(name: str) -> tuple[str, str | None] | None:
            slot = _or_none(self.label, name)
            if slot is None:
                return None
            assert slot.bundle is not None  # a label's newest slot that sets it names a bundle
            if not is_bundle_id(slot.bundle):
                raise Corrupt(f"remote {self.url}: label {name!r} names {slot.bundle[:40]!r}, which is not a bundle id")
            return slot.bundle, name

        found = resolve_name(ref, bundle=bundle, branch=_nothing, label=label)
        if found is None:
            raise NotFound(f"remote {self.url} has no bundle or label {ref!r}")
        return found

    # ---- labels

    def _slots(self, name: str) -> list[int]:
        prefix = label_prefix(name)
        slots = []
        for o in self.store.list(prefix):
            rest = o.key[len(prefix) :]
            if rest.endswith(".json") and rest[:-5].isascii() and rest[:-5].isdigit():
                slots.append(int(rest[:-5]))
        return sorted(slots)

    def _slot(self, name: str, slot: int) -> LabelSlot:
        key = label_key(name, slot)
        return LabelSlot.from_bytes(name, slot, self._get(key, MAX_SMALL), f"remote {self.url}: {key}")

    def label(self, name: str) -> LabelSlot:
        """The label as its newest slot says; NotFound if it never existed or is deleted."""
        self.check_format()
        slots = self._slots(name)
        if not slots:
            raise NotFound(f"remote {self.url} has no label {name!r}")
        newest = self._slot(name, slots[-1])
        if newest.op != "set":
            raise NotFound(f"label {name!r} was deleted from remote {self.url}")
        return newest

    def label_names(self) -> list[str]:
        """The labels: names of ``labels/<name>/<slot>.json`` objects that a label may
        have (``check_label_name``); others are skipped (and logged once)."""
        self.check_format()
        names = set()
        for o in self.store.list("labels/"):
            parts = o.key.split("/")
            if len(parts) != 3:
                continue  # not a slot (the label's folder, or deeper)
            if parts[1] not in names:
                try:
                    names.add(check_label_name(parts[1]))
                except InvalidName as exc:
                    self.skip(f"label {parts[1][:100]!r}", str(exc))
        return sorted(names)

    def labels(self) -> list[LabelSlot]:
        out = []
        for name in self.label_names():
            try:
                out.append(self.label(name))
            except NotFound:
                continue
        return out

    def label_history(self, name: str) -> list[LabelSlot]:
        """Newest first."""
        self.check_format()
        slots = self._slots(name)
        if not slots:
            raise NotFound(f"remote {self.url} has no label {name!r}")
        return [self._slot(name, s) for s in reversed(slots)]

    def set_label(self, name: str, bundle: str | None, *, author: str, time_ns: int) -> int:
        """Append a slot to the label's history (``bundle`` None deletes it); returns the
        slot.  Create-if-absent on slot n+1 above the newest: of two writers racing for
        a slot one wins and the other takes the next one, so both land, in order."""
        self.check_format()
        if bundle is not None:
            self.descriptor(bundle)
        slots = self._slots(name)
        slot = (slots[-1] if slots else 0) + 1
        record = LabelSlot(name, 0, "set" if bundle is not None else "delete", bundle, time_ns, author)
        for _ in range(1000):
            if self.store.put_if_absent(label_key(name, slot), record.to_bytes()):
                return slot
            slot += 1
        raise NotFound(f"remote {self.url}: could not append to label {name!r} (too much contention)")

    # ---- manifests

    def chunk(self, ref: ChunkRef) -> list[RemoteEntry | str]:
        with self._lock:
            found = self._chunks.get(ref.hash)
            if found is not None:
                self._chunks.move_to_end(ref.hash)
                return found
        key = chunk_key(ref.hash)
        data = self.cache.get(key.replace("/", "-")) if self.cache is not None else None
        if data is None or digest(data) != ref.hash:
            try:
                data = self._get(key, MAX_CHUNK)
            except NotFound:
                raise Corrupt(f"remote {self.url}: {key} is missing (a bundle refers to it)") from None
            if digest(data) != ref.hash:
                raise Corrupt(f"remote {self.url}: {key} does not match its hash (corrupted or truncated)")
            if self.cache is not None:
                self.cache.put(key.replace("/", "-"), data)
        entries = decode_chunk(data, f"remote {self.url}: {key}")
        if len(entries) != ref.n or stem_of(entries[0]) != ref.first or stem_of(entries[-1]) != ref.last:
            raise Corrupt(f"remote {self.url}: {key} does not hold the {ref.n} names from {ref.first[:40]!r} to {ref.last[:40]!r} its bundle says")
        with self._lock:
            self._chunks[ref.hash] = entries
            while len(self._chunks) > 256:
                self._chunks.popitem(last=False)
        return entries

    def shown(self, ref: ChunkRef, where: str) -> list[RemoteEntry | str]:
        """``chunk(ref)`` less the entries whose names no document may have
        (``codec.is_stem``: ``.``, ``""``, a name with ``/`` or NUL, ...), each skipped and
        logged once: what a mount lists (a pull takes every entry, and the store refuses
        such a name).  A chunk's names are checked the first time it is shown."""
        entries = self.chunk(ref)
        if ref.hash in self._shown:
            return entries
        is_stem = codec.is_stem
        keep = [e for e in entries if is_stem(stem_of(e))]
        if len(keep) == len(entries):
            with self._lock:
                self._shown.add(ref.hash)
            return entries
        for e in entries:
            if not is_stem(stem_of(e)):
                self.skip(f"document {stem_of(e)[:100]!r} of {where}", "not a document's name")
        return keep

    def _parts(self, layer: list[ChunkRef], after: str, shown: str | None) -> Iterator[list[RemoteEntry | str]]:
        """A layer's entries after ``after``, a chunk (or the rest of one) at a time: only
        the first chunk can hold names up to ``after``, so no other one is filtered.
        ``shown``: what the mount shows of each chunk (``shown``), for that collection."""
        start = bisect.bisect_right([r.last for r in layer], after) if after else 0
        for ref in layer[start:]:
            entries = self.chunk(ref) if shown is None else self.shown(ref, shown)
            if after and ref.first <= after:
                entries = entries[bisect.bisect_right([stem_of(e) for e in entries], after) :]
            yield entries

    def _layer(self, layer: list[ChunkRef], after: str, shown: str | None) -> Iterator[RemoteEntry | str]:
        for part in self._parts(layer, after, shown):
            yield from part

    def entries(self, desc: Descriptor, collection: str, after: str = "", *, shown: bool = False) -> Iterator[RemoteEntry]:
        """Live documents of a collection after ``after``, in name order, merging the
        layers (the newest one decides a name).  ``shown``: only those whose names a
        document may have (``shown``), for a mount."""
        layers = desc.collections.get(collection)
        if layers is None:
            raise NotFound(f"no collection {collection!r} in bundle {desc.bundle}")
        where = f"{desc.bundle}/{collection}" if shown else None
        if len(layers) == 1:  # no merge: whole chunks, less their tombstones (a full layer has none)
            for part in self._parts(layers[0], after, where):
                yield from [e for e in part if not isinstance(e, str)]
            return
        merged = self._layer(layers[0], after, where)
        for layer in layers[1:]:
            merged = overlay(merged, self._layer(layer, after, where))
        for e in merged:
            if not isinstance(e, str):
                yield e

    def stat(self, desc: Descriptor, collection: str, stem: str) -> RemoteEntry:
        layers = desc.collections.get(collection)
        if layers is None:
            raise NotFound(f"no collection {collection!r} in bundle {desc.bundle}")
        for layer in reversed(layers):
            i = bisect.bisect_left([r.last for r in layer], stem)
            if i == len(layer) or layer[i].first > stem:
                continue
            entries = self.chunk(layer[i])
            j = bisect.bisect_left([stem_of(e) for e in entries], stem)
            if j < len(entries) and stem_of(entries[j]) == stem:
                e = entries[j]
                if isinstance(e, str):
                    break
                return e
        raise NotFound(f"no document {stem}.json in bundle {desc.bundle}/{collection}")

    # ---- bodies

    def bodies(self, entries: list[RemoteEntry]) -> list[bytes]:
        """The documents' bytes, each checked against its hash, reading packs a block
        (4 MiB) at a time; blocks are cached (in memory, and on disk with a cache)."""
        return self.packs.bodies(entries)


def _nothing(name: str) -> None:
    return None


def _or_none(lookup: Callable[[str], T], name: str) -> T | None:
    try:
        return lookup(name)
    except NotFound:
        return None
