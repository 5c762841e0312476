"""Directories: listing in pages at stable offsets, and mkdir/rmdir of branches and
collections."""

from __future__ import annotations

import errno
import stat
from array import array
from collections.abc import Awaitable, Callable, Hashable, Iterator
from itertools import islice
from typing import Any, NamedTuple

import outcome
import pyfuse3
import trio

from argonfs import codec
from argonfs.fs.absent import name_hash
from argonfs.fs.base import FsBase, _branch
from argonfs.fs.handles import DirHandle, Item
from argonfs.fs.limits import BRANCH_TIMEOUT, FROZEN_TIMEOUT, PAGE
from argonfs.fs.nodes import (
    BRANCHES,
    BUNDLES,
    COLLDIR,
    INO_MASK,
    LABELS,
    REFDIR,
    ROOT,
    SHARD_DIR,
    SHARD_ROOT,
    TOP,
    Listing,
    Path,
    kind_of,
    read_only_ref,
)
from argonfs.fs.refresh import Refresh
from argonfs.fs.seam import _fail, _name, fuse_op, log
from argonfs.fs.shards import shard_name
from argonfs.snapshot import Listed, Snapshot


class _Page(NamedTuple):
    listing: Listing
    #: each entry's version, for the listing index (prefetching bodies); None: not
    #: worked out (a page from memory)
    slots: list[Any] | None
    #: each stem's ``name_hash``, for a listing that tells which names are absent
    hashes: list[int] | None


class _PageAhead:
    """A listing page fetched in a worker thread in the background (the mount's
    nursery), while readdir hands out the page before it; ``result`` waits for it."""

    def __init__(self, fs: FsBase | None, fn: Callable[[], _Page | None]) -> None:
        self._fn = fn
        self._done = trio.Event()
        self._outcome: outcome.Outcome[_Page | None] | None = None
        self._runner = fs.runner if fs is not None else None
        self._started = fs is None or fs.nursery is not None
        if fs is not None and fs.nursery is not None:
            fs.nursery.start_soon(self._run)

    @classmethod
    def done(cls, page: _Page) -> _PageAhead:
        """A page at hand already (from memory)."""
        ahead = cls(None, lambda: page)
        ahead._outcome = outcome.Value(page)
        ahead._done.set()
        return ahead

    async def _run(self) -> None:
        assert self._runner is not None
        self._outcome = await outcome.acapture(self._runner.run, self._fn)
        self._done.set()

    async def result(self) -> _Page | None:
        if not self._started:  # no nursery (handler-level tests): fetch it now
            self._started = True
            await self._run()
        await self._done.wait()
        assert self._outcome is not None
        return self._outcome.unwrap()


class Directories(Refresh):
    @fuse_op
    async def opendir(self, inode: int, ctx: Any = None) -> int:
        node = self.inodes[inode]
        path = node.path
        log.debug("opendir %s", path)
        await self._refresh(node)
        parent = self.inodes.get(path[:-1]) if path else node
        head: list[Item] = [(".", node), ("..", parent)]
        pages = None
        kind = node.kind
        if kind == ROOT:
            head += [(name, self.inodes.get((name,))) for name in TOP]
        elif path == (BRANCHES,):
            head += [(name, self.inodes.get((BRANCHES, name))) for name in await self.runner.run(self.catalog.branch_names)]
        elif path == (BUNDLES,):
            for bundle_id, when in await self.runner.run(self.catalog.bundles):
                child = self.inodes.get((BUNDLES, bundle_id))
                child.info = child.info or {"mtime_ns": when, "nlink": 2}
                head.append((bundle_id, child))
        elif path == (LABELS,):
            for label in await self.runner.run(self.catalog.labels):
                child = self.inodes.get((LABELS, label.name))
                child.info = {"target": f"../{BUNDLES}/{label.bundle}".encode(), "mtime_ns": label.mtime_ns}
                head.append((label.name, child))
        elif kind in (REFDIR, SHARD_ROOT):  # a ref's collections, or their shard directories
            view = await self._view(path)
            head += [(c, self.inodes.get((*path, c))) for c in await self.runner.run(view.collections)]
        elif kind == SHARD_DIR:
            view = await self._view(path)
            mtime = {"mtime_ns": view.time_ns} if view.time_ns is not None else {}
            for i, shard in enumerate(await self._shards(view, path)):
                child = self.inodes.get((*path, shard_name(i)))
                child.info = child.info or {"size": shard.size, "valid": True, **mtime}
                head.append((shard_name(i), child))
        elif kind == COLLDIR:
            current = await self._view(path)
            view = await self.runner.run(current.pinned)
            head += [(p[-1], n) for p, n in sorted(self.scratch.items()) if p[:-1] == path]
            pages = self._doc_pages(path, view, _branch(current).key if current.kind == "branch" else None)
        else:
            raise _fail(errno.ENOTDIR)
        return self._add_handle(DirHandle(node, head, pages))

    def _doc_pages(self, path: Path, view: Snapshot, bid: Hashable | None) -> Callable[[str], Callable[[], Awaitable[Listing | None]]]:
        """Streams of a collection's documents, a ``Listing`` page per worker-thread round
        trip, the next one fetched while readdir hands out this one.  A branch's
        listing read from its start to its end tells which names are absent (``bid``:
        the branch, fs/absent.py).

        A page of an immutable state (a bundle, a branch at one head) is the same every
        time it is listed, so one the kernel still holds inodes of is served again from
        memory (``FsBase.pages``: weak references, no copy)."""
        head = view.seq
        collection = path[2]
        state: Hashable | None = None
        if bid is not None and head is not None:
            state = (bid, head, collection)
        elif path[0] == BUNDLES:
            state = (BUNDLES, path[1], collection)

        def open_after(after: str) -> Callable[[], Awaitable[Listing | None]]:
            stream: Iterator[Listed] | None = None
            # the stems' hashes, for a listing from the start of a branch's collection
            keys: array[int] | None = array("q") if bid is not None and head is not None and not after else None
            position = after  # the next page starts after this name
            ahead: _PageAhead | None = None

            def page(start: str) -> _Page | None:
                """In the worker thread: the next page, with what readdir and the caches
                need of each entry worked out there, off the request loop."""
                nonlocal stream
                if stream is None:
                    stream = view.entries(collection, start)
                entries = list(islice(stream, PAGE))
                if not entries:
                    return None
                names = [e.stem + codec.SUFFIX for e in entries]
                inos = array("q", [hash((*path, n)) & INO_MASK for n in names])
                encoded = [n.encode("utf-8", "surrogateescape") for n in names]
                slots = [e.version for e in entries]
                hashes = [name_hash(e.stem) for e in entries] if keys is not None else None
                mtimes = array("q", [e.mtime_ns for e in entries])
                return _Page(Listing(path, entries, head, inos, encoded, mtimes), slots, hashes)

            def upcoming() -> _PageAhead:
                nonlocal stream
                known = self.pages.get((state, position)) if state is not None else None
                if known is not None:
                    stream = None  # not where the stream stands: reopened after a miss
                    return _PageAhead.done(_Page(known, None, None))
                start = position

                def next_page() -> _Page | None:
                    return page(start)

                return _PageAhead(self, next_page)

            async def fetch() -> Listing | None:
                nonlocal keys, ahead, position
                got = await (ahead or upcoming()).result()
                ahead = None
                if got is not None:
                    listing = got.listing
                    if state is not None:
                        self.pages[(state, position)] = listing
                    position = listing.entries[-1].stem
                    ahead = upcoming()  # the next page, meanwhile
                if keys is not None:
                    if got is not None:
                        keys.extend(got.hashes if got.hashes is not None else [name_hash(e.stem) for e in got.listing.entries])
                    else:  # read to its end: every name the collection had at ``head``
                        assert bid is not None and head is not None
                        self.absent.listed(bid, collection, head, keys)
                        keys = None
                if got is None:
                    return None
                entries = listing.entries
                slots = got.slots if got.slots is not None else [e.version for e in entries]
                self._listed.add((path, entries[0].stem), (view, collection), entries, slots)
                if self.scratch:
                    listing = self._without_scratch(listing)
                if len(set(listing.inos)) < len(listing.inos):
                    self._clashing(listing)
                return listing

            return fetch

        return open_after

    def _without_scratch(self, listing: Listing) -> Listing:
        """A page without the documents a scratch file of the same name hides (the
        scratch file is listed instead, among the directory's head entries)."""
        keep = [i for i in range(len(listing)) if listing.path(i) not in self.scratch]
        if len(keep) == len(listing):
            return listing
        names = listing.names
        return Listing(
            listing.dir,
            [listing.entries[i] for i in keep],
            listing.head,
            array("q", [listing.inos[i] for i in keep]),
            [names[i] for i in keep],
            array("q", [listing.mtimes[i] for i in keep]),
        )

    def _clashing(self, listing: Listing) -> None:
        """Two names of a page with one inode hash: give each a node of its own now, so
        readdir reports them by their nodes (the second one probes another number)."""
        seen: set[int] = set()
        clash = {ino for ino in listing.inos if ino in seen or seen.add(ino)}  # type: ignore[func-returns-value]
        for i, ino in enumerate(listing.inos):
            if ino in clash:
                node = self.inodes.get(listing.path(i))
                if not node.in_memory:
                    self._set_doc_info(node, listing.entries[i], listing.head)

    def _doc_attrs(self, path: Path) -> pyfuse3.EntryAttributes:
        """What every listed document of a directory shares in its attributes; readdir
        sets the rest per entry (the same as ``_entry`` gives a node made from it)."""
        frozen = read_only_ref(path)
        a = pyfuse3.EntryAttributes()
        a.entry_timeout = a.attr_timeout = FROZEN_TIMEOUT if frozen else BRANCH_TIMEOUT
        a.st_uid, a.st_gid = self.uid, self.gid
        a.st_blksize = 4096
        a.st_mode = stat.S_IFREG | (0o444 if frozen else 0o644)
        a.st_nlink = 1
        return a

    @fuse_op
    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        handle = self._handles[fh]
        assert isinstance(handle, DirHandle)
        await handle.seek(start_id)
        reply = pyfuse3.readdir_reply
        head = handle.head
        while handle.pos < len(head):
            name, child = head[handle.pos]
            if not reply(token, name.encode("utf-8", "surrogateescape"), self._entry(child), handle.pos + 1):
                return
            if name not in (".", ".."):
                child.lookups += 1
            handle.pos += 1
        while await handle.more():
            if not self._reply_documents(handle, token):
                return

    def _reply_documents(self, handle: DirHandle, token: Any) -> bool:
        """Hand out the documents of the handle's page from ``at`` on, by inode number
        and the page's entries, making no node (fs/nodes.py); False once the kernel's
        buffer is full.  The loop is the listing's hot path: names are bound once."""
        page = handle.page
        assert page is not None
        attrs = handle.attrs
        if attrs is None:
            attrs = handle.attrs = self._doc_attrs(handle.node.path)
        reply = pyfuse3.readdir_reply
        table = self.inodes
        listed, lookups, has_node = table.listed, table.listed_lookups, table.node_of
        entries, inos, names, mtimes = page.entries, page.inos, page.names, page.mtimes
        pos = handle.pos
        full = False
        for i in range(handle.at, len(entries)):
            ino = inos[i]
            owner = listed.get(ino)
            if owner is not page and (owner is not None or has_node(ino) is not None):
                node = table.claim(page, i)
                if node is not None:  # a node of its own: its attributes may be newer
                    if not node.in_memory:
                        self._set_doc_info(node, entries[i], page.head)
                    if not reply(token, names[i], self._entry(node), pos + 1):
                        full = True
                        break
                    node.lookups += 1
                    pos += 1
                    continue
            size = entries[i].size
            attrs.st_ino = ino
            attrs.st_size = size
            attrs.st_blocks = (size + 511) // 512
            attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = mtimes[i]
            if not reply(token, names[i], attrs, pos + 1):
                full = True
                break
            listed[ino] = page
            lookups[ino] = lookups.get(ino, 0) + 1
            pos += 1
        handle.moved(pos - handle.pos)
        return not full

    @fuse_op
    async def releasedir(self, fh: int) -> None:
        self._handles.pop(fh, None)

    @fuse_op
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("mkdir %s", path)
        if parent.kind in (SHARD_ROOT, SHARD_DIR):
            self._check_writable(path)  # a frozen state's: EROFS
        if parent.path == (BRANCHES,):  # the store checks the name (``a@b`` is EINVAL)
            await self.runner.run(self.catalog.create_branch, path[1], author=self._author(ctx))
            self._views.pop((BRANCHES, path[1]), None)
        elif parent.kind == REFDIR:
            self._check_writable(path)
            branch = _branch(await self._view(path))
            seq = await self._write(branch.key, branch.create_collection, path[2], author=self._author(ctx))
            self._wrote(branch.key, seq)
            self.absent.created(branch.key, path[2], seq)  # empty: cp -r into it asks nothing before each create
        else:
            raise _fail(errno.EPERM)
        node = self.inodes.get(path)
        node.info = {}
        return self._counted(await self._lookup(path))

    @fuse_op
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("rmdir %s", path)
        self._check_writable(path)
        kind = kind_of(path)
        if kind == COLLDIR:
            branch = _branch(await self._view(path))
            seq = await self._write(branch.key, branch.drop_collection, path[2], author=self._author(ctx))
            self._wrote(branch.key, seq)
            self.absent.dropped(branch.key, path[2], seq)
            for p in [p for p in self.scratch if p[:-1] == path]:
                self.inodes.detach(self.scratch.pop(p))
        elif kind == REFDIR and path[0] == BRANCHES:
            view = await self._view(path)
            if await self.runner.run(view.collections):
                raise _fail(errno.ENOTEMPTY)
            await self.runner.run(self.catalog.delete_branch, path[1])
            self._views.pop((BRANCHES, path[1]), None)
        else:
            raise _fail(errno.EPERM)
        node = self.inodes.find(path)
        if node is not None:
            node.info = {}
