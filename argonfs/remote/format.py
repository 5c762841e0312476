"""The bundle format on an object store (docs/formats.md, "Remotes"): its layout, the
bounds on what a remote may say, object names and hashes, and the two small sealed
objects, bundle descriptors and label slots, checked field by field as they are decoded.
Manifest chunks are remote/chunks.py; reading a remote is remote/reading.py (``Remote``)
and remote/packs.py (documents' bytes).

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
there.  Pure, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import orjson

from argonfs.errors import Corrupt, WrongFormat

FORMAT = 1
MARKER = "argonfs-remote.json"
PACK_TARGET = 8 << 20
#: content-defined chunk boundaries: after a name whose hash is 0 mod CHUNK_AVG, within
#: [CHUNK_MIN, CHUNK_MAX] entries, so similar manifests cut at the same names
CHUNK_AVG, CHUNK_MIN, CHUNK_MAX = 2048, 256, 8192
#: no chunk holds more entries than this (a push cuts them at CHUNK_MAX)
CHUNK_LIMIT = 1 << 20
#: a delta layer is flattened into a full manifest beyond this many layers
MAX_LAYERS = 6
#: a descriptor's ``sketch``: the SKETCH_K smallest ``sketch_value``s of its documents,
#: what a push compares to choose the base closest in content (``similarity``); written
#: as base64 of 8-byte big-endian values (about 1.4 kB)
SKETCH_K = 128

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


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def is_digest(value: object) -> bool:
    """Whether ``value`` has the shape of ``digest``'s result (an object's name)."""
    return type(value) is str and _DIGEST.fullmatch(value) is not None


def is_int(value: object, low: int = 0, high: int = INT64) -> bool:
    """Whether ``value`` is an int (not a bool) in ``[low, high)``."""
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

    @property
    def sketch(self) -> list[int] | None:
        """The bundle's content sketch (checked when decoded), None if it has none (pushed
        by an argonfs before it had sketches)."""
        return decode_sketch(self.extra["sketch"]) if "sketch" in self.extra else None

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
        if not is_int(self.time_ns):
            return f"time_ns {self.time_ns!r} is not a time"
        if "sketch" in self.extra and decode_sketch(self.extra["sketch"]) is None:
            return f"sketch {self.extra['sketch']!r:.80} is not base64 of up to {SKETCH_K} increasing 8-byte integers below 2^63"
        for c, layers in self.collections.items():
            if not is_int(self.counts[c]):
                return f"collection {c[:40]!r}: count {self.counts[c]!r} is not a count"
            if not 1 <= len(layers) <= MAX_READ_LAYERS:
                return f"collection {c[:40]!r}: {len(layers)} layers (1 to {MAX_READ_LAYERS})"
            for layer in layers:
                last = None
                for r in layer:
                    if not (is_digest(r.hash) and type(r.first) is str and type(r.last) is str and r.first <= r.last and is_int(r.n, 1, CHUNK_LIMIT)):
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
        if not ((found.op, type(found.bundle)) in (("set", str), ("delete", type(None))) and is_int(found.time_ns)):
            raise Corrupt(f"{where}: not a label slot (op {found.op!r:.40}, bundle {found.bundle!r:.40}, time_ns {found.time_ns!r:.40})")
        return found


def sketch_value(collection: str, stem: str, h: str) -> int:
    """A document's place in a sketch: a 63-bit hash of its collection, name and content
    hash (NUL, which no name holds, between them)."""
    key = f"{collection}\0{stem}\0{h}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def sketch(values: Iterable[int]) -> list[int]:
    """The ``SKETCH_K`` smallest distinct values (a bottom-k sketch), increasing."""
    return sorted(set(heapq.nsmallest(SKETCH_K, values)))


def encode_sketch(values: list[int]) -> str:
    return base64.b64encode(b"".join(v.to_bytes(8, "big") for v in values)).decode()


def decode_sketch(value: object) -> list[int] | None:
    """A sketch as a descriptor holds it, checked: base64 (strict) of at most ``SKETCH_K``
    8-byte values, each below 2^63, strictly increasing; None if it is anything else."""
    if type(value) is not str or len(value) > 4 * ((8 * SKETCH_K + 2) // 3):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) % 8:
        return None
    values = [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]
    if not all(v < INT64 for v in values) or not all(a < b for a, b in pairwise(values)):
        return None
    return values


def similarity(a: list[int], b: list[int]) -> float:
    """The estimated Jaccard similarity of two bundles' documents from their sketches: of
    the k smallest values of both (k the shorter sketch's length, so each sketch holds
    every one of its set's values below them), the share found in both; 0 if either is
    empty.  About 1/sqrt(k) off at worst, enough to tell a close base from a far one."""
    k = min(len(a), len(b))
    if k == 0:
        return 0.0
    sa, sb = set(a), set(b)
    smallest = sorted(sa | sb)[:k]
    return sum(1 for v in smallest if v in sa and v in sb) / len(smallest)


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
