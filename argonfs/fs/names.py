"""Names: unlink, rename (documents, scratch files, labels), and links, which only
``/labels`` has (a label is a symlink to its bundle)."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import pyfuse3

from argonfs import codec
from argonfs.errors import NotFound
from argonfs.fs.base import _branch, _check_new_name, _is_document
from argonfs.fs.files import Files
from argonfs.fs.handles import now_ns
from argonfs.fs.nodes import COLLDIR, FILE, LABEL, LABELS, Path, Scratch, kind_of
from argonfs.fs.seam import _fail, _name, fuse_op, log


class Names(Files):
    @fuse_op
    async def readlink(self, inode: int, ctx: Any = None) -> bytes:
        node = self.inodes[inode]
        if node.kind != LABEL:
            raise _fail(errno.EINVAL)
        await self._refresh(node)
        return node.info["target"]

    @fuse_op
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("symlink %s -> %s", path, target)
        if parent.path != (LABELS,):
            raise _fail(errno.EPERM)
        bundle = os.fsdecode(target).rstrip("/").rsplit("/", 1)[-1]
        await self.runner.run(self.catalog.set_label, path[1], bundle, author=self._author(ctx))
        node = self.inodes.find(path)
        if node is not None:
            node.info = {}  # read the new target now, not after the label timeout
        return self._counted(await self._lookup(path))

    @fuse_op
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        log.debug("link %s", self.inodes[inode].path)
        raise _fail(errno.EPERM)  # a document has one name; cp makes a copy

    @fuse_op
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("unlink %s", path)
        kind = kind_of(path)
        if kind == LABEL:
            await self.runner.run(self.catalog.delete_label, path[1], author=self._author(ctx))
            node = self.inodes.find(path)
            if node is not None:
                self.inodes.detach(node)
            return
        self._check_writable(path)
        if kind != FILE:
            raise _fail(errno.EPERM)
        scratch = self.scratch.pop(path, None)
        if scratch is not None:
            self.inodes.detach(scratch)  # open descriptors keep it until their last close
            return
        stem = codec.filename_to_stem(path[3])
        if stem is None:
            raise NotFound(f"no file {path[3]!r}")
        branch = _branch(await self._view(path))
        seq = await self._write(branch.key, branch.delete, path[2], stem, author=self._author(ctx))
        self._wrote(branch.key, seq)
        self.absent.removed(branch.key, seq)
        node = self.inodes.find(path)
        if node is not None:
            self.inodes.detach(node)

    @fuse_op
    async def rename(self, parent_old: int, name_old: bytes, parent_new: int, name_new: bytes, flags: int, ctx: Any) -> None:
        src = (*self.inodes[parent_old].path, _name(name_old))
        dst = (*self.inodes[parent_new].path, _name(name_new))
        log.debug("rename %s -> %s", src, dst)
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise _fail(errno.EINVAL)
        if src == dst:
            await self._lookup(src)
            return  # POSIX: renaming a file onto itself does nothing
        kind = kind_of(src)
        author = self._author(ctx)
        if kind == LABEL and kind_of(dst) == LABEL:
            await self._rename_label(src, dst, author)
            return
        if src[:2] != dst[:2] or src[0] != dst[0]:
            raise _fail(errno.EXDEV)
        self._check_writable(src)
        if kind == COLLDIR:
            raise _fail(errno.EXDEV)  # mv falls back to copying
        if kind != FILE or kind_of(dst) != FILE:
            raise _fail(errno.EPERM)
        _check_new_name(dst)
        node = await self._lookup(src)
        if flags & pyfuse3.RENAME_NOREPLACE and (dst in self.scratch or await self._exists(dst)):
            raise _fail(errno.EEXIST)
        branch = _branch(await self._view(src))
        if node.scratch is None and _is_document(dst):  # a document renamed: one atomic move
            stem, new_stem = codec.filename_to_stem(src[3]) or "", codec.filename_to_stem(dst[3]) or ""
            written, slot = await self._write(branch.key, branch.rename, src[2], stem, dst[2], new_stem, author=author)
            self._wrote(branch.key, slot)
            self.absent.wrote(branch.key, dst[2], new_stem, None)  # several slots: not accounted for
            self._set_written(node, written, slot)
            if node.data is not None:
                node.former_stems += (stem,)  # its open buffer still says the old _id
        elif node.scratch is None:  # a document renamed to a temporary name (a backup, mv x.json x.bak)
            data = node.data if node.data is not None else bytearray(await self._body(node))
            seq = await self._write(branch.key, branch.delete, src[2], codec.filename_to_stem(src[3]) or "", author=author)
            self._wrote(branch.key, seq)
            self.absent.removed(branch.key, seq)
            node.scratch = Scratch(stat.S_IFREG | 0o644, ctx.uid, ctx.gid, node.info["entry"].mtime_ns if "entry" in node.info else now_ns())
            node.data, node.dirty = data, False
        elif _is_document(dst):  # a temporary renamed onto a document name: commit its content
            scratch = node.scratch
            await self._commit(node, bytes(node.data or b""), author, scratch.mtime_ns if scratch.mtime_set else None, path=dst)
            if node.writers == 0:
                self._settle(node)
        if self.scratch.get(src) is node:
            del self.scratch[src]
        self.scratch.pop(dst, None)  # a temporary replaced by the move
        self.inodes.move(node, dst)
        if node.scratch is not None:
            self.scratch[dst] = node

    async def _rename_label(self, src: Path, dst: Path, author: str) -> None:
        label = await self.runner.run(self.catalog.label, src[1])
        await self.runner.run(self.catalog.set_label, dst[1], label.bundle, author=author)
        await self.runner.run(self.catalog.delete_label, src[1], author=author)
        node = self.inodes.find(src)
        if node is not None:
            self.inodes.move(node, dst)
            node.info = {}  # read again: the target is the source's
