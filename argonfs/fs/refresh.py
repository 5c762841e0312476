"""What a path means now: a node's attributes made current (``_refresh``, ``_lookup``),
the shard summaries of frozen states (``_shards``), and the attributes the kernel is
given (``_entry``).  fs/limits.py says how long each answer holds."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from typing import Any

import pyfuse3
import trio

from argonfs import codec
from argonfs.errors import ArgonError, NotFound
from argonfs.fs.base import FsBase, _branch
from argonfs.fs.limits import BRANCH_TIMEOUT, FROZEN_TIMEOUT, SHARD_SUMMARIES
from argonfs.fs.nodes import (
    BRANCHES,
    BUNDLES,
    COLLDIR,
    FILE,
    LABEL,
    REFDIR,
    ROOT,
    SHARD,
    SHARD_DIR,
    SHARD_ROOT,
    TOP,
    TOPDIR,
    Node,
    Path,
    kind_of,
    read_only_ref,
)
from argonfs.fs.shards import SHARDS, Shard, shard_number, summarize
from argonfs.snapshot import Listed, Snapshot


class Refresh(FsBase):
    def _entry(self, node: Node) -> pyfuse3.EntryAttributes:
        path = node.path
        a = pyfuse3.EntryAttributes()
        a.st_ino = node.ino
        frozen = read_only_ref(path)
        a.entry_timeout = a.attr_timeout = FROZEN_TIMEOUT if frozen else BRANCH_TIMEOUT
        a.st_uid, a.st_gid = self.uid, self.gid
        a.st_blksize = 4096
        info = node.info
        kind = node.kind
        entry = info.get("entry")
        mtime = entry.mtime_ns if entry is not None else info.get("mtime_ns", self.started_ns)
        if kind == LABEL:
            a.st_mode = stat.S_IFLNK | 0o777
            a.st_size = len(info.get("target", b""))
            a.st_nlink = 1
        elif kind == SHARD:
            a.st_mode = stat.S_IFREG | 0o444
            a.st_size = info.get("size", 0)
            a.st_nlink = 1
            node.reported_size = a.st_size
        elif kind == FILE:
            scratch = node.scratch
            if scratch is not None:
                a.st_mode = scratch.mode
                a.st_uid, a.st_gid = scratch.uid, scratch.gid
                mtime = scratch.mtime_ns
            else:
                a.st_mode = stat.S_IFREG | (0o444 if frozen else 0o644)
                if node.mtime_ns is not None:
                    mtime = node.mtime_ns
            # a document's size is its committed version's, also while a writer fills
            # its buffer: readers keep reading that version (docs/mount.md)
            a.st_size = len(node.data) if node.data is not None and scratch is not None else info.get("size", 0)
            a.st_nlink = 0 if node.unlinked else 1
            node.reported_size = a.st_size
        else:
            a.st_mode = stat.S_IFDIR | (0o555 if frozen or path in ((), (BUNDLES,)) else 0o755)
            a.st_nlink = info.get("nlink", 2)
        a.st_blocks = (a.st_size + 511) // 512
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = mtime
        if kind == FILE and node.scratch is not None and node.scratch.atime_ns is not None:
            a.st_atime_ns = node.scratch.atime_ns
        return a

    async def _refresh(self, node: Node) -> None:
        """Make ``node.info`` current; raises NotFound if the path no longer exists."""
        path = node.path
        kind = kind_of(path)
        if kind == ROOT:
            node.info = {"nlink": 2 + len(TOP)}
        elif kind == TOPDIR:
            if path[0] not in TOP:
                raise NotFound(f"no /{path[0]}")
            if time.monotonic() < node.info.get("until", 0):
                return
            # nlink of a directory: 2 + its subdirectories (labels are symlinks)
            if path[0] == BRANCHES:
                subdirs = len(await self.runner.run(self.catalog.branch_names))
            elif path[0] == BUNDLES:
                subdirs = len(await self.runner.run(self.catalog.bundles))
            else:
                subdirs = 0
            node.info = {"nlink": 2 + subdirs, "until": time.monotonic() + BRANCH_TIMEOUT}
        elif kind == LABEL:
            if time.monotonic() < node.info.get("until", 0):
                return  # every path walk through a label reads the link: ask the store once per timeout
            label = await self.runner.run(self.catalog.label, path[1])
            node.info = {"target": f"../{BUNDLES}/{label.bundle}".encode(), "mtime_ns": label.mtime_ns, "until": time.monotonic() + BRANCH_TIMEOUT}
        elif kind in (SHARD_ROOT, SHARD_DIR, SHARD):
            await self._refresh_shards(node, kind)
        elif node.in_memory:
            return  # a scratch file, a document open for writing, an unlinked open file
        else:
            view = await self._view(path)
            if kind != FILE and time.monotonic() < node.info.get("until", 0):
                return  # directories: existence is re-checked once per timeout
            head = await self._head(view)
            if node.info.get("head", -1) == head and node.info.get("valid"):
                return
            if kind != FILE and node.info.get("valid") and view.kind == "branch" and self.absent.unchanged(_branch(view).key, node.info["head"], head):
                # the branch moved by this daemon's writes of documents alone (cp -r into
                # it): which collections exist is unchanged, nothing to ask (fs/absent.py)
                node.info["head"] = head
                node.info["until"] = time.monotonic() + BRANCH_TIMEOUT
                return
            if kind == REFDIR:
                info: dict[str, Any] = {"nlink": 2 + len(await self.runner.run(view.collections))}
                if view.time_ns is not None:
                    info["mtime_ns"] = view.time_ns
            elif kind == COLLDIR:
                if not await self.runner.run(view.collection_exists, path[2]):
                    raise NotFound(f"no collection {path[2]!r} in {view.ref}")
                info = {"nlink": 2}
            else:
                stem = codec.filename_to_stem(path[3])
                if stem is None:
                    raise NotFound(f"no file {path[3]!r}")
                if view.kind == "branch" and self.absent.absent(_branch(view).key, path[2], stem, head):
                    raise NotFound(f"no document {path[3]!r} in {view.ref}/{path[2]} (known from a listing)")
                entry = await self.runner.run(view.stat, path[2], stem)
                self._set_doc_info(node, entry, head)
                return
            info["head"] = head
            info["valid"] = True
            info["until"] = time.monotonic() + (FROZEN_TIMEOUT if view.kind != "branch" else BRANCH_TIMEOUT)
            node.info = info

    async def _refresh_shards(self, node: Node, kind: str) -> None:
        """The shard view exists in frozen states only (bundles, ``BRANCH@SEQ``): a
        branch's documents move, so its shards would not hold still."""
        path = node.path
        if not read_only_ref(path):
            raise NotFound(f"no {SHARDS} in a branch: only bundles, labels and BRANCH@SEQ views have it")
        if node.info.get("valid"):
            return  # a frozen state: what was true once stays true
        view = await self._view(path)
        info: dict[str, Any] = {"nlink": 2}
        if kind == SHARD_ROOT:
            info["nlink"] = 2 + len(await self.runner.run(view.collections))
        else:
            shards = await self._shards(view, path)
            if kind == SHARD:
                i = shard_number(path[4])
                if i is None or i >= len(shards):
                    raise NotFound(f"no shard {path[4]!r} of {view.ref}/{path[3]}")
                info = {"size": shards[i].size}
        if view.time_ns is not None:
            info["mtime_ns"] = view.time_ns
        info["valid"] = True
        node.info = info

    async def _shards(self, view: Snapshot, path: Path) -> list[Shard]:
        """The shards of the collection ``path[3]`` of a frozen state, from one listing
        (streamed in a worker thread; a shard costs a few numbers, a document nothing).
        Raises NotFound for a collection the state does not have."""
        key = path[:4]
        shards = self._shard_summaries.get(key)
        if shards is not None:
            self._shard_summaries.move_to_end(key)
            return shards
        waiting = self._shards_inflight.get(key)
        if waiting is not None:  # another request is listing it
            await waiting.wait()
            return await self._shards(view, path)
        done = self._shards_inflight[key] = trio.Event()
        try:
            collection = path[3]
            if not await self.runner.run(view.collection_exists, collection):
                raise NotFound(f"no collection {collection!r} in {view.ref}")

            def listed() -> list[Shard]:
                entries: Iterator[Listed] = view.entries(collection)
                return summarize((e.stem, e.size) for e in entries)

            shards = await self.runner.run(listed)
            self._shard_summaries[key] = shards
            while len(self._shard_summaries) > SHARD_SUMMARIES:
                self._shard_summaries.popitem(last=False)
            return shards
        finally:
            del self._shards_inflight[key]
            done.set()

    async def _lookup(self, path: Path) -> Node:
        node = self.scratch.get(path) or self.inodes.get(path)
        try:
            await self._refresh(node)
        except ArgonError:
            self.inodes.release(node)
            raise
        return node

    def _counted(self, node: Node) -> pyfuse3.EntryAttributes:
        """Attributes for a reply that hands the kernel a reference (lookup, create...)."""
        node.lookups += 1
        return self._entry(node)

    async def _exists(self, path: Path) -> bool:
        try:
            await self._lookup(path)
        except NotFound:
            return False
        return True
