"""The shard view of immutable snapshots: a collection as a few large files.

``/bundles/<id>/.shards/<collection>/00000.json`` (and the same under a ``BRANCH@SEQ``
view; a label reaches it through its bundle) holds documents ``[i*N, (i+1)*N)`` of the
collection in listing order, ``N = SHARD_DOCS``, as one JSON array of their rendered
bodies (what each ``<id>.json`` holds): ``[`` + bodies joined by ``,\\n`` + ``]\\n``.
A loader then reads a few large files instead of a file per document.

Pure: the layout, the sizes (from a listing's sizes alone, so ``stat`` fetches no body)
and which bodies a byte range needs.  fs/files.py serves them.  ``.shards`` cannot
collide with a collection (no collection name starts with ``.``, argonfs/naming.py), and a
shard name has no ``_id``'s meaning: it is never inside a collection directory.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

#: the directory of shard views in a snapshot's root, not listed (see docs/mount.md)
SHARDS = ".shards"
#: documents per shard: fixed, so shard names are stable for a snapshot
SHARD_DOCS = 1000
OPEN, SEP, CLOSE = b"[", b",\n", b"]\n"
_DIGITS = 5


def shard_name(i: int) -> str:
    return f"{i:0{_DIGITS}d}.json"


def shard_number(name: str) -> int | None:
    """The shard a file name is (``00042.json`` -> 42), None for any other name."""
    stem, dot, ext = name.partition(".")
    if dot != "." or ext != "json" or len(stem) < _DIGITS or not stem.isdigit() or not stem.isascii():
        return None
    i = int(stem)
    return i if shard_name(i) == name else None


def shard_size(sizes: Iterable[int]) -> int:
    """The bytes of a shard whose documents render to ``sizes`` (at least one)."""
    n = total = 0
    for size in sizes:
        n += 1
        total += size
    assert n, "a shard holds at least one document"
    return len(OPEN) + total + len(SEP) * (n - 1) + len(CLOSE)


@dataclass(frozen=True)
class Shard:
    """What a listing says of one shard: where it starts and how large it is."""

    #: the stem its first document is listed after ("" for the first shard)
    after: str
    count: int
    size: int


def summarize(entries: Iterable[tuple[str, int]]) -> list[Shard]:
    """The shards of a collection from its listing, ``(stem, size)`` in listing order,
    streamed: memory per shard, not per document."""
    shards: list[Shard] = []
    after, previous, count, total = "", "", 0, 0
    for stem, size in entries:
        if count == SHARD_DOCS:
            shards.append(Shard(after, count, len(OPEN) + total + len(SEP) * (count - 1) + len(CLOSE)))
            after, count, total = previous, 0, 0
        count += 1
        total += size
        previous = stem
    if count:
        shards.append(Shard(after, count, len(OPEN) + total + len(SEP) * (count - 1) + len(CLOSE)))
    return shards


class Layout:
    """Where each document of one shard lies in its bytes (from the sizes alone)."""

    def __init__(self, sizes: list[int]) -> None:
        assert sizes, "a shard holds at least one document"
        self.sizes = sizes
        self.starts: list[int] = []
        at = len(OPEN)
        for size in sizes:
            self.starts.append(at)
            at += size + len(SEP)
        self.size = at - len(SEP) + len(CLOSE)

    def needed(self, off: int, size: int) -> range:
        """The documents whose bytes (a body and the separator after it) overlap
        ``[off, off + size)``."""
        end = min(off + size, self.size)
        if end <= off:
            return range(0)
        first = max(bisect_right(self.starts, off) - 1, 0)
        last = max(bisect_right(self.starts, end - 1) - 1, 0)
        return range(first, last + 1)

    def piece(self, off: int, size: int, bodies: dict[int, bytes]) -> bytes:
        """Bytes ``[off, off + size)``, given the bodies of ``needed(off, size)``."""
        end = min(off + size, self.size)
        if end <= off:
            return b""
        out = bytearray()
        docs = self.needed(off, size)
        if off < len(OPEN):
            out += OPEN[off:]
        last = len(self.sizes) - 1
        for i in docs:
            body = bodies[i]
            start = self.starts[i]
            tail = CLOSE if i == last else SEP
            chunk = body + tail
            lo = max(off - start, 0)
            hi = min(end - start, len(chunk))
            out += chunk[lo:hi]
        return bytes(out[: end - off])
