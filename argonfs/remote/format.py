"""The bundle format on an object store, and reading it (docs/formats.md, "Remotes").

Layout under the remote's prefix; every object is written once, with create-if-absent:

    argonfs-remote.json               the format marker: {"format": 1}
    packs/<hash>.pack                 rendered documents back to back, ~8 MiB; named by
                                      the BLAKE2b-128 of its bytes
    chunks/<hash>.chunk               zlib'd JSON: a sorted run of one collection's
                                      manifest entries; named by the hash of its bytes
    bundles/<id>.json                 a bundle's descriptor: per collection, its layers
                                      of chunks; the only way in to a bundle
    labels/<name>/<slot>.json         a label's history: dense slots 1, 2, ... (10 digits),
                                      the newest one is the label

A collection's manifest is a list of **layers**, each a sorted list of chunks; the
first is a full manifest and each later one a delta over the layers below it (changed
entries, and tombstones for removed names), so pushing a bundle that shares most of its
documents with one already pushed writes only the delta and the new documents' pack.
A reader merges the layers, newest first.  A manifest entry is ``[stem, size, hash,
mtime_ns, pack index, offset]`` (a tombstone is ``[stem]``), the pack index pointing
into the chunk's own table of pack hashes.

Integrity: a chunk or pack is checked against the hash in its name, a document against
its content hash, a descriptor and a label slot against the ``check`` they carry; a
mismatch is ``Corrupt``, never data.  Blocking.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson

from argonfs.errors import Corrupt, NotFound, WrongFormat
from argonfs.remote.cache import Cache
from argonfs.remote.objects import ObjectStore
from argonfs.snapshot import is_bundle_id, resolve_name

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT = 1
MARKER = "argonfs-remote.json"
PACK_TARGET = 8 << 20
BLOCK = 4 << 20
#: content-defined chunk boundaries: after a name whose hash is 0 mod CHUNK_AVG, within
#: [CHUNK_MIN, CHUNK_MAX] entries, so similar manifests cut at the same names
CHUNK_AVG, CHUNK_MIN, CHUNK_MAX = 2048, 256, 8192
#: a delta layer is flattened into a full manifest beyond this many layers
MAX_LAYERS = 6


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pack_key(h: str) -> str:
    return f"packs/{h}.pack"


def chunk_key(h: str) -> str:
    return f"chunks/{h}.chunk"


def bundle_key(bundle_id: str) -> str:
    return f"bundles/{bundle_id}.json"


def label_prefix(name: str) -> str:
    return f"labels/{name}/"


def label_key(name: str, slot: int) -> str:
    return f"{label_prefix(name)}{slot:010d}.json"


class RemoteEntry(NamedTuple):
    """A document as a remote manifest lists it (the mount's ``Listed``).  A named tuple,
    not a frozen dataclass: a listing decodes one per document, and a tuple of strings
    and ints costs a fraction to build and is dropped from the garbage collector's
    tracking after its first collection (docs/benchmarks.md, "Remotes")."""

    stem: str
    size: int
    hash: str
    mtime_ns: int
    pack: str
    offset: int

    @property
    def version(self) -> str:
        """Content-addressed: the same bytes wherever they are seen.  The content hash
        itself, so a listing builds no key object per document."""
        return self.hash


@dataclass(frozen=True)
class ChunkRef:
    hash: str
    first: str
    last: str
    n: int


@dataclass(frozen=True)
class Descriptor:
    bundle: str
    time_ns: int
    branch: str
    message: str
    author: str
    #: collection -> layers (oldest first), each a sorted list of chunks
    collections: dict[str, list[list[ChunkRef]]]
    #: collection -> live documents
    counts: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "bundle": self.bundle,
            "time_ns": self.time_ns,
            "branch": self.branch,
            "message": self.message,
            "author": self.author,
            "collections": {
                c: {"n": self.counts[c], "layers": [[[r.hash, r.first, r.last, r.n] for r in layer] for layer in layers]}
                for c, layers in self.collections.items()
            },
            **self.extra,
        }
        return _sealed(body)

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Descriptor:
        body = _unseal(data, where)
        try:
            collections = {c: [[ChunkRef(*r) for r in layer] for layer in v["layers"]] for c, v in body["collections"].items()}
            counts = {c: int(v["n"]) for c, v in body["collections"].items()}
            known = {"format", "bundle", "time_ns", "branch", "message", "author", "collections"}
            extra = {k: v for k, v in body.items() if k not in known}
            return cls(body["bundle"], body["time_ns"], body["branch"], body["message"], body["author"], collections, counts, extra)
        except (KeyError, TypeError, ValueError) as exc:
            raise Corrupt(f"{where}: not a bundle descriptor ({exc})") from None


@dataclass(frozen=True)
class LabelSlot:
    name: str
    slot: int
    op: str  # "set" or "delete"
    bundle: str | None
    time_ns: int
    author: str

    def to_bytes(self) -> bytes:
        return _sealed({"format": FORMAT, "name": self.name, "op": self.op, "bundle": self.bundle, "time_ns": self.time_ns, "author": self.author})

    @classmethod
    def from_bytes(cls, name: str, slot: int, data: bytes, where: str) -> LabelSlot:
        body = _unseal(data, where)
        try:
            return cls(name, slot, body["op"], body["bundle"], body["time_ns"], body["author"])
        except KeyError as exc:
            raise Corrupt(f"{where}: not a label slot ({exc})") from None


def _sealed(body: dict[str, Any]) -> bytes:
    """JSON with a ``check``: the hash of the same JSON without it."""
    plain = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return orjson.dumps({**body, "check": digest(plain)}, option=orjson.OPT_SORT_KEYS)


def _unseal(data: bytes, where: str) -> dict[str, Any]:
    try:
        body = orjson.loads(data)
        check = body.pop("check")
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        raise Corrupt(f"{where}: truncated or not argonfs JSON") from None
    if digest(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)) != check:
        raise Corrupt(f"{where}: content does not match its check (corrupted)")
    if body.get("format") != FORMAT:
        raise WrongFormat(f"{where}: written in remote format {body.get('format')!r}; this argonfs reads format {FORMAT}")
    result: dict[str, Any] = body
    return result


# --------------------------------------------------------------------------- chunks


def encode_chunk(collection: str, entries: list[RemoteEntry | str]) -> bytes:
    """A chunk of sorted entries (a ``str`` is a tombstone for that name)."""
    packs: dict[str, int] = {}
    rows: list[list[Any]] = []
    for e in entries:
        if isinstance(e, str):
            rows.append([e])
        else:
            rows.append([e.stem, e.size, e.hash, e.mtime_ns, packs.setdefault(e.pack, len(packs)), e.offset])
    return zlib.compress(orjson.dumps({"format": FORMAT, "collection": collection, "packs": list(packs), "entries": rows}), 6)


def decode_chunk(data: bytes, where: str) -> list[RemoteEntry | str]:
    try:
        body = orjson.loads(zlib.decompress(data))
        packs = body["packs"]
        make = _new_entry
        return [row[0] if len(row) == 1 else make(RemoteEntry, (row[0], row[1], row[2], row[3], packs[row[4]], row[5])) for row in body["entries"]]
    except (zlib.error, orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise Corrupt(f"{where}: not a manifest chunk ({exc})") from None


#: builds a RemoteEntry from a 6-tuple without the generated ``__new__``'s argument
#: handling (decoding a chunk builds thousands)
_new_entry = tuple.__new__


def is_boundary(stem: str, n: int) -> bool:
    """Whether a chunk ends after ``stem``, its ``n``-th entry."""
    if n < CHUNK_MIN:
        return False
    if n >= CHUNK_MAX:
        return True
    return int.from_bytes(hashlib.blake2b(stem.encode(), digest_size=4).digest(), "big") % CHUNK_AVG == 0


def split_chunks(entries: Iterable[RemoteEntry | str]) -> Iterator[list[RemoteEntry | str]]:
    chunk: list[RemoteEntry | str] = []
    for e in entries:
        chunk.append(e)
        if is_boundary(e if isinstance(e, str) else e.stem, len(chunk)):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stem(e: RemoteEntry | str) -> str:
    return e if isinstance(e, str) else e.stem


def _overlay(base: Iterator[RemoteEntry | str], delta: Iterator[RemoteEntry | str]) -> Iterator[RemoteEntry | str]:
    """Two sorted layers as one, ``delta`` deciding the names both list (tombstones are
    kept, for the layers above and the caller).  A delta is small: the base's entries
    pass with one comparison each and no object built per entry."""
    d = next(delta, None)
    ds = _stem(d) if d is not None else None
    for e in base:
        s = e if isinstance(e, str) else e.stem
        while ds is not None and ds < s:
            assert d is not None  # set whenever ds is
            yield d
            d = next(delta, None)
            ds = _stem(d) if d is not None else None
        if ds == s:
            assert d is not None
            yield d
            d = next(delta, None)
            ds = _stem(d) if d is not None else None
        else:
            yield e
    if d is not None:
        yield d
        yield from delta


# --------------------------------------------------------------------------- reading


class Remote:
    """The bundles and labels of one remote, read (and their labels set) through an
    ``ObjectStore``; chunks and pack blocks are cached in ``cache`` (disk) and parsed
    chunks in memory.  Thread-safe: the mount calls it from worker threads."""

    def __init__(self, store: ObjectStore, cache: Cache | None = None) -> None:
        self.store = store
        self.url = store.url
        self.cache = cache
        self._descriptors: dict[str, Descriptor] = {}
        self._chunks: OrderedDict[str, list[RemoteEntry | str]] = OrderedDict()
        #: the last few pack blocks read, so a stream of small reads fetches each once
        self._blocks: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._checked = False

    # ---- the marker

    def check_format(self, *, create: bool = False) -> None:
        """Refuse a remote of another format; with ``create``, mark an empty one as ours."""
        if self._checked:
            return
        try:
            data = self.store.get(MARKER)
        except NotFound:
            if not create:
                raise NotFound(f"remote {self.url}: not an argonfs remote (no {MARKER}); push a bundle to it first") from None
            self.store.put_if_absent(MARKER, orjson.dumps({"format": FORMAT, "kind": "argonfs-remote"}))
            data = self.store.get(MARKER)
        try:
            version = orjson.loads(data).get("format")
        except (orjson.JSONDecodeError, AttributeError):
            raise Corrupt(f"remote {self.url}: {MARKER} is not argonfs JSON") from None
        if version != FORMAT:
            raise WrongFormat(f"remote {self.url} is in remote format {version!r}; this argonfs reads format {FORMAT} (install a matching argonfs)")
        self._checked = True

    # ---- bundles

    def bundle_ids(self) -> list[str]:
        self.check_format()
        return [o.key[len("bundles/") : -len(".json")] for o in self.store.list("bundles/") if o.key.endswith(".json")]

    def descriptor(self, bundle_id: str) -> Descriptor:
        found = self._descriptors.get(bundle_id)
        if found is not None:
            return found
        self.check_format()
        key = bundle_key(bundle_id)
        try:
            data = self.store.get(key)
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
            if rest.endswith(".json") and rest[:-5].isdigit():
                slots.append(int(rest[:-5]))
        return sorted(slots)

    def _slot(self, name: str, slot: int) -> LabelSlot:
        key = label_key(name, slot)
        return LabelSlot.from_bytes(name, slot, self.store.get(key), f"remote {self.url}: {key}")

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
        self.check_format()
        return sorted({o.key.split("/")[1] for o in self.store.list("labels/") if o.key.count("/") == 2})

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
                data = self.store.get(key)
            except NotFound:
                raise Corrupt(f"remote {self.url}: {key} is missing (a bundle refers to it)") from None
            if digest(data) != ref.hash:
                raise Corrupt(f"remote {self.url}: {key} does not match its hash (corrupted or truncated)")
            if self.cache is not None:
                self.cache.put(key.replace("/", "-"), data)
        entries = decode_chunk(data, f"remote {self.url}: {key}")
        with self._lock:
            self._chunks[ref.hash] = entries
            while len(self._chunks) > 256:
                self._chunks.popitem(last=False)
        return entries

    def _parts(self, layer: list[ChunkRef], after: str) -> Iterator[list[RemoteEntry | str]]:
        """A layer's entries after ``after``, a chunk (or the rest of one) at a time: only
        the first chunk can hold names up to ``after``, so no other one is filtered."""
        start = bisect.bisect_right([r.last for r in layer], after) if after else 0
        for ref in layer[start:]:
            entries = self.chunk(ref)
            if after and ref.first <= after:
                entries = entries[bisect.bisect_right([_stem(e) for e in entries], after) :]
            yield entries

    def _layer(self, layer: list[ChunkRef], after: str) -> Iterator[RemoteEntry | str]:
        for part in self._parts(layer, after):
            yield from part

    def entries(self, desc: Descriptor, collection: str, after: str = "") -> Iterator[RemoteEntry]:
        """Live documents of a collection after ``after``, in name order, merging the
        layers (the newest one decides a name)."""
        layers = desc.collections.get(collection)
        if layers is None:
            raise NotFound(f"no collection {collection!r} in bundle {desc.bundle}")
        if len(layers) == 1:  # no merge: whole chunks, less their tombstones (a full layer has none)
            for part in self._parts(layers[0], after):
                yield from [e for e in part if not isinstance(e, str)]
            return
        merged = self._layer(layers[0], after)
        for layer in layers[1:]:
            merged = _overlay(merged, self._layer(layer, after))
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
            j = bisect.bisect_left([_stem(e) for e in entries], stem)
            if j < len(entries) and _stem(entries[j]) == stem:
                e = entries[j]
                if isinstance(e, str):
                    break
                return e
        raise NotFound(f"no document {stem}.json in bundle {desc.bundle}/{collection}")

    # ---- bodies

    def _block(self, pack: str, n: int) -> bytes:
        key = f"pack-{pack}-{n}"
        with self._lock:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
                return data
        data = self.cache.get(key) if self.cache is not None else None
        if data is None:
            try:
                data = self.store.get_range(pack_key(pack), n * BLOCK, BLOCK)
            except NotFound:
                raise Corrupt(f"remote {self.url}: {pack_key(pack)} is missing (a bundle refers to it)") from None
            if self.cache is not None:
                self.cache.put(key, data)
        with self._lock:
            self._blocks[key] = data
            while len(self._blocks) > 4:
                self._blocks.popitem(last=False)
        return data

    def _forget_block(self, pack: str, n: int) -> None:
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
            first, last = e.offset // BLOCK, (e.offset + e.size - 1) // BLOCK if e.size else e.offset // BLOCK
            parts = []
            for n in range(first, last + 1):
                parts.append(self._block(e.pack, n))
            joined = parts[0] if len(parts) == 1 else b"".join(parts)
            start = e.offset - first * BLOCK
            body = joined[start : start + e.size]
            if len(body) != e.size or digest(body) != e.hash:
                for n in range(first, last + 1):
                    self._forget_block(e.pack, n)
                raise Corrupt(f"remote {self.url}: {e.stem}.json in {pack_key(e.pack)} does not match its hash (corrupted or truncated)")
            out.append(body)
        return out


def _nothing(name: str) -> None:
    return None


def _or_none(lookup: Callable[[str], T], name: str) -> T | None:
    try:
        return lookup(name)
    except NotFound:
        return None
