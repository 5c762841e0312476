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
mismatch is ``Corrupt``, never data.  A remote can write any bytes with valid hashes, so
everything it says is untrusted input: every object is read up to a bound (``MAX_CHUNK``,
``MAX_DESCRIPTOR``, ``MAX_SMALL``, ``MAX_BODY``), every field is checked for its type and
range when it is decoded, a chunk must hold the names and the count its reference says,
in order, and a document's size and offset are checked against the pack's real length
as it is read (a block that ends before the document does is ``Corrupt``, never read
again): nothing a remote says can make a loop or an allocation outgrow what is really
there.  Blocking.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson

from argonfs import codec
from argonfs.errors import Corrupt, InvalidName, NotFound, WrongFormat
from argonfs.naming import check_label_name, is_bundle_id, resolve_name
from argonfs.remote.cache import Cache
from argonfs.remote.objects import ObjectStore

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT = 1
MARKER = "argonfs-remote.json"
PACK_TARGET = 8 << 20
BLOCK = 4 << 20
#: content-defined chunk boundaries: after a name whose hash is 0 mod CHUNK_AVG, within
#: [CHUNK_MIN, CHUNK_MAX] entries, so similar manifests cut at the same names
CHUNK_AVG, CHUNK_MIN, CHUNK_MAX = 2048, 256, 8192
#: no chunk holds more entries than this (a push cuts them at CHUNK_MAX)
CHUNK_LIMIT = 1 << 20
#: a delta layer is flattened into a full manifest beyond this many layers
MAX_LAYERS = 6

# Bounds on what a remote says (anything beyond one is Corrupt, before it is used).
#: a document's JSON: 1 GiB, beyond any 16 MiB BSON document's rendering (even its
#: indentation at MongoDB's nesting limit of 100 levels)
MAX_BODY = 1 << 30
#: a manifest chunk, compressed and not: CHUNK_MAX entries of at most ~300 bytes each
#: need about 3 MiB
MAX_CHUNK = 64 << 20
#: a bundle descriptor (a few chunk references per collection)
MAX_DESCRIPTOR = 64 << 20
#: the marker and a label slot
MAX_SMALL = 1 << 20
#: the layers of a collection (a push flattens them beyond MAX_LAYERS)
MAX_READ_LAYERS = 64
#: sizes, offsets, times and counts are 64-bit signed integers (what FUSE can show)
INT64 = 1 << 63
_DIGEST = re.compile(r"[0-9a-f]{32}")
#: invalid names logged (each once) before the log stops saying so
MAX_SKIPS_LOGGED = 1000


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def is_digest(value: object) -> bool:
    """Whether ``value`` has the shape of ``digest``'s result (an object's name)."""
    return type(value) is str and _DIGEST.fullmatch(value) is not None


def _is_int(value: object, low: int = 0, high: int = INT64) -> bool:
    return type(value) is int and low <= value < high


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
            counts = {c: v["n"] for c, v in body["collections"].items()}
            known = {"format", "bundle", "time_ns", "branch", "message", "author", "collections"}
            extra = {k: v for k, v in body.items() if k not in known}
            desc = cls(body["bundle"], body["time_ns"], body["branch"], body["message"], body["author"], collections, counts, extra)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise Corrupt(f"{where}: not a bundle descriptor ({exc})") from None
        wrong = desc._wrong()
        if wrong:
            raise Corrupt(f"{where}: not a bundle descriptor ({wrong})")
        return desc

    def _wrong(self) -> str | None:
        """What is wrong with a descriptor as read (types, ranges, and each layer's chunks
        sorted and apart), or None.  A collection's name is checked by its reader: the
        mount skips one it cannot show, a pull refuses it."""
        if type(self.bundle) is not str:
            return f"bundle {self.bundle!r:.40} is not a name"
        if not _is_int(self.time_ns):
            return f"time_ns {self.time_ns!r} is not a time"
        for c, layers in self.collections.items():
            if not _is_int(self.counts[c]):
                return f"collection {c[:40]!r}: count {self.counts[c]!r} is not a count"
            if not 1 <= len(layers) <= MAX_READ_LAYERS:
                return f"collection {c[:40]!r}: {len(layers)} layers (1 to {MAX_READ_LAYERS})"
            for layer in layers:
                last = None
                for r in layer:
                    if not (is_digest(r.hash) and type(r.first) is str and type(r.last) is str and r.first <= r.last and _is_int(r.n, 1, CHUNK_LIMIT)):
                        return f"collection {c[:40]!r}: a chunk reference {[r.hash, r.first, r.last, r.n]!r:.200}"
                    if last is not None and r.first <= last:
                        return f"collection {c[:40]!r}: chunks out of order at {r.first[:40]!r}"
                    last = r.last
        return None


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
            found = cls(name, slot, body["op"], body["bundle"], body["time_ns"], body["author"])
        except KeyError as exc:
            raise Corrupt(f"{where}: not a label slot ({exc})") from None
        if not ((found.op, type(found.bundle)) in (("set", str), ("delete", type(None))) and _is_int(found.time_ns)):
            raise Corrupt(f"{where}: not a label slot (op {found.op!r:.40}, bundle {found.bundle!r:.40}, time_ns {found.time_ns!r:.40})")
        return found


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
    """A chunk's entries, each field checked for its type and range (a size, an offset
    and an mtime are 64-bit integers, a pack index points into the chunk's table of pack
    hashes) and the names strictly in order; ``Corrupt`` otherwise.  Inflated up to
    ``MAX_CHUNK`` bytes, never more."""
    try:
        inflate = zlib.decompressobj()
        text = inflate.decompress(data, MAX_CHUNK)
        if inflate.unconsumed_tail or not inflate.eof:
            raise ValueError(f"more than {MAX_CHUNK} bytes" if inflate.unconsumed_tail else "truncated")
        body = orjson.loads(text)
        packs = body["packs"]
        rows = body["entries"]
        if type(packs) is not list or type(rows) is not list or not all(is_digest(p) for p in packs):
            raise TypeError("packs and entries must be lists, packs of hashes")
        return _entries(packs, rows)
    except (zlib.error, orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise Corrupt(f"{where}: not a manifest chunk ({exc})") from None


def _entries(packs: list[str], rows: list[Any]) -> list[RemoteEntry | str]:
    """The rows of a chunk as entries and tombstones, checked (``TypeError`` or
    ``ValueError`` for the first wrong one).  The loop of every chunk read: names bound once."""
    make, entry, npacks, top = _new_entry, RemoteEntry, len(packs), INT64
    out: list[RemoteEntry | str] = []
    previous = None
    for row in rows:
        if type(row) is not list:
            raise TypeError(f"an entry {row!r:.100}")
        if len(row) == 6:
            stem, size, h, mtime, p, offset = row
            if not (
                type(stem) is str
                and type(size) is int
                and 0 <= size < top
                and type(h) is str
                and type(mtime) is int
                and -top <= mtime < top
                and type(p) is int
                and 0 <= p < npacks
                and type(offset) is int
                and 0 <= offset < top
            ):
                raise ValueError(f"an entry {row!r:.200}")
            out.append(make(entry, (stem, size, h, mtime, packs[p], offset)))
        elif len(row) == 1 and type(row[0]) is str:
            stem = row[0]
            out.append(stem)
        else:
            raise ValueError(f"an entry {row!r:.100}")
        if previous is not None and not previous < stem:
            raise ValueError(f"names out of order at {stem[:40]!r}")
        previous = stem
    return out


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
        if len(entries) != ref.n or _stem(entries[0]) != ref.first or _stem(entries[-1]) != ref.last:
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
        keep = [e for e in entries if is_stem(_stem(e))]
        if len(keep) == len(entries):
            with self._lock:
                self._shown.add(ref.hash)
            return entries
        for e in entries:
            if not is_stem(_stem(e)):
                self.skip(f"document {_stem(e)[:100]!r} of {where}", "not a document's name")
        return keep

    def _parts(self, layer: list[ChunkRef], after: str, shown: str | None) -> Iterator[list[RemoteEntry | str]]:
        """A layer's entries after ``after``, a chunk (or the rest of one) at a time: only
        the first chunk can hold names up to ``after``, so no other one is filtered.
        ``shown``: what the mount shows of each chunk (``shown``), for that collection."""
        start = bisect.bisect_right([r.last for r in layer], after) if after else 0
        for ref in layer[start:]:
            entries = self.chunk(ref) if shown is None else self.shown(ref, shown)
            if after and ref.first <= after:
                entries = entries[bisect.bisect_right([_stem(e) for e in entries], after) :]
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
            merged = _overlay(merged, self._layer(layer, after, where))
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
            if not (_is_int(e.size, 1, MAX_BODY + 1) and _is_int(e.offset)):
                raise Corrupt(
                    f"remote {self.url}: {e.stem[:100]}.json in {pack_key(e.pack)}: {e.size!r:.40} bytes at {e.offset!r:.40} is not a document's place"
                )
            first, last = e.offset // BLOCK, (e.offset + e.size - 1) // BLOCK
            parts = []
            for n in range(first, last + 1):
                block = self._block(e.pack, n)
                parts.append(block)
                if len(block) < BLOCK and n < last:  # the pack's last block, before the document's end
                    self._forget_block(e.pack, n)
                    end = n * BLOCK + len(block)
                    raise Corrupt(
                        f"remote {self.url}: {e.stem[:100]}.json in {pack_key(e.pack)} ends at byte {e.offset + e.size}, past the pack's end at {end}"
                    )
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
