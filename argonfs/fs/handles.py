"""Open files, open directories and the cache of document bodies."""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from argonfs.fs.nodes import Listing, Node
from argonfs.fs.shards import Layout
from argonfs.snapshot import Listed, Snapshot


def now_ns() -> int:
    return time.time_ns()


@dataclass(eq=False)
class FileHandle:
    """One open file.  A ``shared`` handle (every writer, and every descriptor of a
    scratch file) reads and writes the node's one buffer, so they all see the same bytes
    and size; a reader of a document reads the committed version it opened, never
    another process's half-written buffer."""

    node: Node
    snapshot: bytes = b""
    writable: bool = False
    author: str | None = None
    shared: bool = False
    #: opened with O_APPEND: every write goes to the end of the buffer
    append: bool = False

    @property
    def data(self) -> bytes | bytearray:
        data = self.node.data
        return data if self.shared and data is not None else self.snapshot


@dataclass(eq=False)
class ShardHandle:
    """One open shard file (fs/shards.py): its documents' listing entries and where
    each lies in its bytes; a read fetches only the bodies its range needs."""

    node: Node
    view: Snapshot
    collection: str
    entries: list[Listed]
    layout: Layout
    #: the bodies the last read used, by position: the next read in order starts in the
    #: last of them, which may be too large for the body cache (a document over 8 MiB)
    recent: dict[int, bytes] = field(default_factory=dict)


Item = tuple[str, Any]  # (name, node)


class DirHandle:
    """One open directory: a listing produced in pages and served at stable offsets.

    Offsets are positions in the listing (1, 2, ...): first the fixed ``head`` entries,
    then the documents, a ``Listing`` page at a time.  Continuing where the last
    readdir stopped (the normal case) costs nothing; the kernel may also restart at
    any offset it was given, which re-opens the stream after the name at the nearest
    mark at or before it (one every ``MARK_EVERY`` positions, remembered for the recent
    ones) and counts forward, instead of re-reading from the start.
    """

    MARKS = 8192
    MARK_EVERY = 32

    def __init__(self, node: Node, head: list[Item], pages: Callable[[str], Callable[[], Awaitable[Listing | None]]] | None = None) -> None:
        self.node = node
        self.head = head  # fixed entries: ".", "..", subdirectories, scratch files
        self._open_pages = pages  # after-name -> a function fetching the next page
        #: for readdir of documents: attributes reused for every listed entry (fs/directories.py)
        self.attrs: Any = None
        self.pos = 0
        #: the page being read and the index of the entry at ``pos`` in it
        self.page: Listing | None = None
        self.at = 0
        self._fetch: Callable[[], Awaitable[Listing | None]] | None = None
        self._done = False
        self._marks: collections.OrderedDict[int, str] = collections.OrderedDict()
        self._rewind(0, "")

    def _rewind(self, pos: int, after: str) -> None:
        self.pos = pos
        self.page, self.at = None, 0
        self._fetch = self._open_pages(after) if self._open_pages is not None else None
        self._done = self._fetch is None

    async def seek(self, pos: int) -> None:
        if pos == self.pos:
            return
        mark = pos - pos % self.MARK_EVERY
        if pos <= len(self.head):
            self._rewind(pos, "")
        elif mark > len(self.head) and mark in self._marks:
            self._rewind(mark, self._marks[mark])
        else:  # an offset we no longer remember: count from the start
            self._rewind(0, "")
        while self.pos < pos and self.pos < len(self.head):
            self.pos += 1
        while self.pos < pos and await self.more():
            assert self.page is not None
            self.moved(min(len(self.page) - self.at, pos - self.pos))

    async def more(self) -> bool:
        """Whether a document is left at ``pos`` (past the head), in ``page`` at ``at``;
        fetches the next page when this one is done."""
        while self.page is None or self.at >= len(self.page):
            self.page = None
            if self._done:
                return False
            assert self._fetch is not None
            page = await self._fetch()
            if page is None:
                self._done = True
            else:
                self.page, self.at = page, 0
        return True

    def moved(self, count: int) -> None:
        """``count`` documents of the page, from ``at`` on, were handed out."""
        assert self.page is not None
        every, start = self.MARK_EVERY, self.pos
        first = start + every - start % every
        entries, at = self.page.entries, self.at
        for p in range(first, start + count + 1, every):
            self._marks[p] = entries[at + p - start - 1].stem
        self.pos += count
        self.at += count
        while len(self._marks) > self.MARKS:
            self._marks.popitem(last=False)


class BodyCache:
    """Rendered document bodies by version slot.  A slot never changes, so an entry is
    valid for every view that shows that slot; the cache only bounds memory (LRU)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: collections.OrderedDict[Any, bytes] = collections.OrderedDict()

    def get(self, slot: Any) -> bytes | None:
        data = self._items.get(slot)
        if data is not None:
            self._items.move_to_end(slot)
        return data

    def __contains__(self, slot: Any) -> bool:
        return slot in self._items

    def discard(self, slot: Any) -> None:
        data = self._items.pop(slot, None)
        if data is not None:
            self.size -= len(data)

    def put(self, slot: Any, data: bytes) -> None:
        if slot in self._items or len(data) > self.max_bytes // 8:
            return
        self._items[slot] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)


class ListingIndex:
    """Where each recently listed document sits in its listing page, so opening one can
    fetch the bodies of the documents listed after it in one query (a reader going
    through a directory in order then costs one round trip per ``PREFETCH`` files).

    A page is known by where it starts (its directory and first name): listing a
    directory again replaces its pages instead of adding copies, so readers that list
    the same directory over and over hold one listing.  Bounded by ``max_entries``: the
    oldest pages are forgotten first.

    Pages are indexed by slot only when a lookup needs it (``following``): a listing
    nobody reads from (``ls -l``) costs a list append per page, and a page forgotten
    before anyone asked was never indexed."""

    def __init__(self, max_entries: int = 65536) -> None:
        self.max_entries = max_entries
        self.entries = 0
        self._pages: collections.OrderedDict[Any, tuple[Any, list[Any], list[Any]]] = collections.OrderedDict()
        #: slot -> the page it is listed in, and its position there (two maps, not one of
        #: pairs: indexing a page allocates no object per entry)
        self._where: dict[Any, Any] = {}
        self._at: dict[Any, int] = {}
        #: pages added since the last lookup, oldest first (a dict used as an ordered set)
        self._pending: dict[Any, None] = {}

    def add(self, page: Any, source: Any, entries: list[Any], keys: list[Any]) -> None:
        """``source``: what fetches these entries' bodies (the snapshot and collection);
        ``keys``: the entries' version slots, in the same order."""
        if not entries:
            return
        self._drop(page)
        self._pages[page] = (source, entries, keys)
        self._pending[page] = None
        self.entries += len(entries)
        while self.entries > self.max_entries and len(self._pages) > 1:
            self._drop(next(iter(self._pages)))

    def _drop(self, page: Any) -> None:
        old = self._pages.pop(page, None)
        if old is None:
            return
        self.entries -= len(old[1])
        if self._pending.pop(page, 0) is None:
            return  # never indexed
        where, at = self._where, self._at
        for k in old[2]:
            if where.get(k) == page:
                del where[k]
                del at[k]

    def _index(self) -> None:
        """Index the pages added since the last lookup, in the order they came (a slot
        listed twice belongs to the page that listed it last)."""
        for page in self._pending:
            keys = self._pages[page][2]
            self._where.update(dict.fromkeys(keys, page))
            self._at.update(zip(keys, range(len(keys)), strict=True))
        self._pending.clear()

    def following(self, slot: Any, count: int) -> tuple[Any, list[Any]] | None:
        """The source and the entries from ``slot`` on (at most ``count``)."""
        if self._pending:
            self._index()
        page = self._where.get(slot)
        if page is None or page not in self._pages:
            return None
        source, entries, _keys = self._pages[page]
        i = self._at[slot]
        return source, entries[i : i + count]
