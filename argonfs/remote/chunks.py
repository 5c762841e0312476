"""Manifest chunks (the format: remote/format.py): a manifest entry (``RemoteEntry``), a
chunk encoded and decoded (each row checked for its types, ranges and order: a remote is
untrusted input), content-defined chunk boundaries, and the merge of a delta layer over
the layers below it.  Pure, no I/O.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from argonfs.errors import Corrupt
from argonfs.remote.format import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, FORMAT, INT64, MAX_CHUNK, is_digest


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


def stem_of(e: RemoteEntry | str) -> str:
    """The name of an entry or a tombstone."""
    return e if isinstance(e, str) else e.stem


def overlay(base: Iterator[RemoteEntry | str], delta: Iterator[RemoteEntry | str]) -> Iterator[RemoteEntry | str]:
    """Two sorted layers as one, ``delta`` deciding the names both list (tombstones are
    kept, for the layers above and the caller).  A delta is small: the base's entries
    pass with one comparison each and no object built per entry."""
    d = next(delta, None)
    ds = stem_of(d) if d is not None else None
    for e in base:
        s = e if isinstance(e, str) else e.stem
        while ds is not None and ds < s:
            assert d is not None  # set whenever ds is
            yield d
            d = next(delta, None)
            ds = stem_of(d) if d is not None else None
        if ds == s:
            assert d is not None
            yield d
            d = next(delta, None)
            ds = stem_of(d) if d is not None else None
        else:
            yield e
    if d is not None:
        yield d
        yield from delta
