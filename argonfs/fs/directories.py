"""Directories: listing in pages at stable offsets, and mkdir/rmdir of branches and
collections."""

from __future__ import annotations

import errno
from array import array
from collections.abc import Awaitable, Callable, Hashable, Iterator
from itertools import islice
from typing import Any

import pyfuse3

from argonfs import codec
from argonfs.fs.absent import name_hash
from argonfs.fs.base import PAGE, FsBase, _branch, _fail, _name, fuse_op, log
from argonfs.fs.handles import DirHandle, Item
from argonfs.fs.nodes import (
    BRANCHES,
    BUNDLES,
    COLLDIR,
    LABELS,
    REFDIR,
    ROOT,
    TOP,
    Path,
    kind_of,
)
from argonfs.snapshot import Listed, Snapshot


class Directories(FsBase):
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
        elif kind == REFDIR:
            view = await self._view(path)
            head += [(c, self.inodes.get((*path, c))) for c in await self.runner.run(view.collections)]
        elif kind == COLLDIR:
            current = await self._view(path)
            view = await self.runner.run(current.pinned)
            head += [(p[-1], n) for p, n in sorted(self.scratch.items()) if p[:-1] == path]
            pages = self._doc_pages(path, view, _branch(current).key if current.kind == "branch" else None)
        else:
            raise _fail(errno.ENOTDIR)
        return self._add_handle(DirHandle(node, head, pages))

    def _doc_pages(self, path: Path, view: Snapshot, bid: Hashable | None) -> Callable[[str], Callable[[], Awaitable[list[Item]]]]:
        """Streams of a collection's documents, a page per worker-thread round trip.  A
        branch's listing read from its start to its end tells which names are absent
        (``bid``: the branch, fs/absent.py)."""
        head = view.seq
        collection = path[2]

        def open_after(after: str) -> Callable[[], Awaitable[list[Item]]]:
            stream: Iterator[Listed] | None = None
            # the stems' hashes, for a listing from the start of a branch's collection
            keys: array[int] | None = array("q") if bid is not None and head is not None and not after else None

            def page() -> list[Listed]:
                nonlocal stream
                if stream is None:
                    stream = view.entries(collection, after)
                return list(islice(stream, PAGE))

            async def fetch() -> list[Item]:
                nonlocal keys
                entries = await self.runner.run(page)
                if keys is not None:
                    if entries:
                        keys.extend([name_hash(e.stem) for e in entries])
                    else:  # read to its end: every name the collection had at ``head``
                        assert bid is not None and head is not None
                        self.absent.listed(bid, collection, head, keys)
                        keys = None
                items: list[Item] = []
                slots = []
                scratch = self.scratch
                node_of, set_info, suffix = self.inodes.get, self._set_doc_info, codec.SUFFIX  # once per page, not per entry
                for entry in entries:
                    slot = entry.version
                    slots.append(slot)
                    name = entry.stem + suffix
                    child_path = (*path, name)
                    if scratch and child_path in scratch:
                        continue
                    child = node_of(child_path)
                    if not child.in_memory:
                        set_info(child, entry, head, slot)
                    items.append((name, child))
                if entries:
                    self._listed.add((path, entries[0].stem), (view, collection), entries, slots)
                return items

            return fetch

        return open_after

    @fuse_op
    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        handle = self._handles[fh]
        assert isinstance(handle, DirHandle)
        await handle.seek(start_id)
        while (item := handle.ready() or await handle.peek()) is not None:
            name, child = item
            if not pyfuse3.readdir_reply(token, name.encode("utf-8", "surrogateescape"), self._entry(child), handle.pos + 1):
                break
            if name not in (".", ".."):
                child.lookups += 1
            handle.advance()

    @fuse_op
    async def releasedir(self, fh: int) -> None:
        self._handles.pop(fh, None)

    @fuse_op
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("mkdir %s", path)
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
