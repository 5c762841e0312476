"""Lookup and attributes: lookup, forget, getattr, setattr (sizes and times), statfs."""

from __future__ import annotations

import errno
import stat
import time
from collections.abc import Sequence
from typing import Any

import pyfuse3

from argonfs.errors import NotFound
from argonfs.fs.files import Files, _resize
from argonfs.fs.limits import CAPACITY, MAX_FILES, NAME_MAX, USAGE_TTL
from argonfs.fs.nodes import FILE, LABELS, TOP, is_dir, kind_of, max_depth
from argonfs.fs.seam import _fail, _name, fuse_op, log


class Attributes(Files):
    @fuse_op
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        parent = self.inodes[parent_inode]
        text = _name(name)
        log.debug("lookup %s / %s", parent.path, text)
        if text == ".":
            return self._counted(parent)
        if text == "..":
            return self._counted(self.inodes.get(parent.path[:-1]) if parent.path else parent)
        if not is_dir(parent.path):
            raise _fail(errno.ENOTDIR)
        path = (*parent.path, text)
        if len(path) > max_depth(path) or (len(path) == 3 and path[0] == LABELS) or (len(path) == 1 and text not in TOP):
            raise NotFound(f"no {text!r}")
        return self._counted(await self._lookup(path))

    @fuse_op
    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            self.inodes.forget(ino, count)

    @fuse_op
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        node = self.inodes[inode]
        log.debug("getattr %s", node.path)
        await self._refresh(node)
        return self._entry(node)

    @fuse_op
    async def setattr(self, inode: int, attr: Any, fields: Any, fh: int | None, ctx: Any) -> pyfuse3.EntryAttributes:
        node = self.inodes[inode]
        path = node.path
        log.debug("setattr %s", path)
        if not node.unlinked:
            self._check_writable(path)
        if kind_of(path) != FILE:
            if fields.update_size:
                raise _fail(errno.EISDIR)
            await self._refresh(node)  # modes and times of directories are fixed; accept silently
            return self._entry(node)
        scratch = node.scratch
        if fields.update_size:
            if node.data is not None:  # open for writing, or a scratch file
                _resize(node.data, attr.st_size)
                self._touched(node)
            elif not node.unlinked:  # truncate(2) of a stored document by path: a write of its own
                data = bytearray(await self._body(node))
                _resize(data, attr.st_size)
                await self._commit(node, bytes(data), self._author(ctx))
        elif fields.update_mtime and not node.unlinked:
            # utimensat (touch -d, rsync -a, cp -p): the time is kept with the document.  A
            # truncation also carries a time, which is not an explicit one: ignored above.
            if scratch is not None:
                scratch.mtime_ns, scratch.mtime_set = attr.st_mtime_ns, True
            elif node.data is not None:
                node.mtime_ns, node.dirty = attr.st_mtime_ns, True  # committed at close
            else:
                await self._commit(node, await self._body(node), self._author(ctx), attr.st_mtime_ns)
        if scratch is not None:
            if fields.update_atime:
                scratch.atime_ns = attr.st_atime_ns
            if fields.update_mode:
                scratch.mode = stat.S_IFREG | stat.S_IMODE(attr.st_mode)
            if fields.update_uid:
                scratch.uid = attr.st_uid
            if fields.update_gid:
                scratch.gid = attr.st_gid
        else:
            await self._refresh(node)  # a document's mode and owner are the store's
        return self._entry(node)

    @fuse_op
    async def statfs(self, ctx: Any = None) -> pyfuse3.StatvfsData:
        """A capacity of 1 PiB and 2^40 files, less what the repository uses (MongoDB's
        storage size and version count, asked at most every ``USAGE_TTL`` seconds), so
        tools that check for free space before copying go ahead."""
        usage = await self._usage_now()
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = CAPACITY // 4096
        s.f_bfree = s.f_bavail = max(0, s.f_blocks - usage["bytes"] // 4096)
        s.f_files = MAX_FILES
        s.f_ffree = s.f_favail = max(0, MAX_FILES - usage["objects"])
        s.f_namemax = NAME_MAX
        return s

    async def _usage_now(self) -> dict[str, int]:
        if self._usage is None or time.monotonic() > self._usage[1]:
            self._usage = (await self.runner.run(self.catalog.usage), time.monotonic() + USAGE_TTL)
        return self._usage[0]
