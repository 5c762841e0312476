"""Open files: open, create, read, write, flush, fsync, release, and the read log.

A file's bytes belong to its node (fs/nodes.py): writers share one buffer, a commit goes
to the node's current name (fs/commit.py), and a document's writers use direct I/O so
readers keep reading the committed version until the commit.  Bodies come from
fs/bodies.py; a shard of a frozen state is opened and read here from its documents'
bodies.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import pyfuse3
import trio

from argonfs import codec
from argonfs.errors import ArgonError, Corrupt, ReadOnly
from argonfs.fs.base import _check_new_name, _is_document
from argonfs.fs.bodies import Bodies, _slot
from argonfs.fs.commit import Commits
from argonfs.fs.handles import FileHandle, ShardHandle, now_ns
from argonfs.fs.limits import HOT_TTL, MAX_FILE, SHARD_LISTINGS
from argonfs.fs.nodes import COLLDIR, FILE, SHARD, Node, Path, Scratch, is_dir, read_only_ref
from argonfs.fs.prefix import JsonPrefix
from argonfs.fs.seam import _fail, _name, fuse_op, log
from argonfs.fs.shards import Layout, shard_number
from argonfs.snapshot import Listed


def _now() -> datetime:
    """Wall-clock time at MongoDB's millisecond precision, naive UTC (the read log)."""
    t = datetime.now(UTC).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _resize(data: bytearray, size: int) -> None:
    if size > MAX_FILE:
        raise _fail(errno.EFBIG)
    if size < len(data):
        del data[size:]
    else:
        data.extend(bytes(size - len(data)))


class Files(Bodies, Commits):
    @fuse_op
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        node = self.inodes[inode]
        path = node.path
        log.debug("open %s flags %o", path, flags)
        if node.kind == SHARD:
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
                raise ReadOnly(f"/{'/'.join(path)} is read-only")
            return await self._open_shard(node, ctx)
        if node.kind != FILE:
            raise _fail(errno.EISDIR if is_dir(path) else errno.EINVAL)
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND) != 0
        truncate = bool(flags & os.O_TRUNC)
        if writing and not node.unlinked:
            self._check_writable(path)
            await self._check_unprotected(path)
        if node.scratch is not None or node.unlinked or (writing and node.data is not None):
            # the node's own buffer: a scratch file, an unlinked open file, another writer's
            if node.data is None:
                raise _fail(errno.ENOENT)  # an unlinked document nobody writes: gone
            if writing:
                self._open_for_writing(node, node.data, truncate)
            elif not node.unlinked:
                self._note_read(path, ctx)
            handle = FileHandle(node, b"", writing, self._author(ctx), shared=True, append=bool(flags & os.O_APPEND))
            return pyfuse3.FileInfo(fh=self._add_handle(handle), keep_cache=True, direct_io=node.scratch is None)
        if not writing and node.info.get("valid") and read_only_ref(path):
            data = self.bodies.get(node.info["slot"])
            if data is not None:  # a frozen document already in memory: nothing to ask
                self._note_read(path, ctx)
                self._read_ahead(node.info["slot"])
                return pyfuse3.FileInfo(fh=self._add_handle(FileHandle(node, data)), keep_cache=True)
        if not writing and node.data is None and node.info.get("valid") and "slot" in node.info:
            data = await self._served_again(node)
            if data is not None:  # a branch's document open again at the version the page cache holds
                self._note_read(path, ctx)
                self._read_ahead(node.info["slot"])
                return pyfuse3.FileInfo(fh=self._add_handle(FileHandle(node, data)), keep_cache=True)
        if writing:
            body = b"" if truncate else await self._body(node)
            self._open_for_writing(node, bytearray(body) if node.data is None else node.data, truncate)
            # A document's writers use direct I/O: their bytes never enter the page cache,
            # which keeps the committed version for readers until the commit.
            handle = FileHandle(node, b"", True, self._author(ctx), shared=True, append=bool(flags & os.O_APPEND))
            return pyfuse3.FileInfo(fh=self._add_handle(handle), keep_cache=True, direct_io=True)
        await self._refresh(node)
        self._note_read(path, ctx)
        data = await self._body(node)
        if node.data is None:
            node.info["size"] = len(data)
        # The kernel may cache another size than this version's and would cut reads at
        # it: a version written behind its back within the attribute timeout, or a
        # writer through this mount, whose open(O_TRUNC) and writes change the kernel's
        # size of the file even though its bytes go to the daemon only.  Such opens read
        # past the page cache (direct I/O): documents of a collection written through
        # this mount in the last HOT_TTL seconds, and a size known to be wrong (the
        # kernel is told to forget it).  Documents nobody writes here keep the cache.
        wrong = node.reported_size not in (-1, len(data))
        if wrong and node.data is None:
            self.invalidator.inode(node.ino, attr_only=True)
        written = self._written.get(path[:3])
        stale = wrong or node.data is not None or (written is not None and time.monotonic() - written < HOT_TTL)
        # The page cache holds what an earlier open served; keep it when that was this
        # very version (a version never changes), drop it otherwise.
        slot = node.info.get("slot")
        keep = read_only_ref(path) or (slot is not None and node.info.get("served") == slot)
        node.info["served"] = slot
        return pyfuse3.FileInfo(fh=self._add_handle(FileHandle(node, data)), keep_cache=keep and not stale, direct_io=stale)

    async def _served_again(self, node: Node) -> bytes | None:
        """The body of a branch's document when the branch has not moved since its node
        was checked, the version is the one an earlier open served (so the page cache
        holds it), the kernel's size is right, and nobody writes the collection through
        this mount: then an open keeps the cache and asks nothing.  None otherwise, for
        the full path below, whose outcome in this case is the same."""
        path = node.path
        head = await self._head(await self._view(path))
        slot = node.info["slot"]
        if node.info.get("head") != head or node.info.get("served") != slot:
            return None
        data = self.bodies.get(slot)
        written = self._written.get(path[:3])
        if data is None or node.reported_size not in (-1, len(data)) or (written is not None and time.monotonic() - written < HOT_TTL):
            return None
        return data

    async def _open_shard(self, node: Node, ctx: Any) -> pyfuse3.FileInfo:
        """A shard of a frozen state: its documents' entries (one listing call from
        where it starts), no body yet.  The kernel keeps its pages across opens."""
        await self._refresh(node)
        path = node.path
        view = await self._view(path)
        i = shard_number(path[4])
        assert i is not None  # _refresh checked the name
        shard = (await self._shards(view, path))[i]

        def listed() -> list[Listed]:
            return list(islice(view.entries(path[3], shard.after), shard.count))

        entries = self.shard_listings.get(path)
        if entries is None:
            entries = await self.runner.run(listed)
        layout = Layout([e.size for e in entries])
        if len(entries) != shard.count or layout.size != shard.size:  # the listing of a frozen state changed
            log.error("/%s: listed %d documents of %d bytes, expected %d of %d", "/".join(path), len(entries), layout.size, shard.count, shard.size)
            raise _fail(errno.EIO)
        self.shard_listings[path] = entries
        self.shard_listings.move_to_end(path)
        while len(self.shard_listings) > SHARD_LISTINGS:
            self.shard_listings.popitem(last=False)
        if self.read_log:
            for e in entries:
                self._note_read((*path[:2], path[3], e.stem + codec.SUFFIX), ctx)
        handle = ShardHandle(node, view, path[3], entries, layout)
        return pyfuse3.FileInfo(fh=self._add_handle(handle), keep_cache=True)

    async def _read_shard(self, handle: ShardHandle, off: int, size: int) -> bytes:
        """Bytes of a shard: the bodies the range needs, from the body cache or in one
        round trip for the rest."""
        docs = handle.layout.needed(off, size)
        bodies: dict[int, bytes] = {}
        missing: list[int] = []
        for i in docs:
            data = handle.recent.get(i) or self.bodies.get(_slot(handle.entries[i]))
            if data is None:
                missing.append(i)
            else:
                bodies[i] = data
        if missing:
            wanted = [handle.entries[i] for i in missing]
            try:
                fetched = await self.runner.run(handle.view.bodies, handle.collection, wanted)
            except Corrupt as exc:  # a corrupted document: the shard holding it answers EIO
                log.error("/%s: %s", "/".join(handle.node.path), exc)
                raise _fail(errno.EIO) from None
            for i, entry, data in zip(missing, wanted, fetched, strict=True):
                if len(data) != entry.size:
                    log.error("/%s: %s is %d bytes, listed as %d", "/".join(handle.node.path), entry.stem, len(data), entry.size)
                    raise _fail(errno.EIO)
                self.bodies.put(_slot(entry), data)
                bodies[i] = data
        handle.recent = bodies
        return handle.layout.piece(off, size, bodies)

    def _open_for_writing(self, node: Node, data: bytearray, truncate: bool) -> None:
        """Every writer of a node shares one buffer, as on a local disk."""
        self._written[node.path[:3]] = time.monotonic()
        node.data = data
        node.writers += 1
        if truncate:
            del data[:]
            self._touched(node)

    def _touched(self, node: Node) -> None:
        """The bytes changed: commit at close, and the modification time is now."""
        node.dirty = True
        node.mtime_ns = None
        if node.scratch is not None:
            node.scratch.mtime_ns, node.scratch.mtime_set = now_ns(), False

    @fuse_op
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("create %s", path)
        self._check_writable(path)
        if parent.kind != COLLDIR:
            raise _fail(errno.EPERM)
        _check_new_name(path)
        await self._check_unprotected(path)
        node = self.scratch.get(path)
        if node is None:
            node = self.inodes.get(path)
            node.info = {}
            node.scratch = Scratch(stat.S_IFREG | stat.S_IMODE(mode), ctx.uid, ctx.gid, now_ns(), fresh=_is_document(path))
            node.data = bytearray()
            self.scratch[path] = node
        node.writers += 1
        node.dirty = True
        fh = self._add_handle(FileHandle(node, b"", True, self._author(ctx), shared=True))
        return pyfuse3.FileInfo(fh=fh), self._counted(node)

    @fuse_op
    async def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self._handles[fh]
        if isinstance(handle, ShardHandle):
            return await self._read_shard(handle, off, size)
        assert isinstance(handle, FileHandle)
        return bytes(handle.data[off : off + size])

    @fuse_op
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        handle = self._handles[fh]
        assert isinstance(handle, FileHandle)
        if not handle.writable:
            raise _fail(errno.EBADF)
        end = off + len(buf)
        if end > MAX_FILE:
            log.warning("%s: write beyond %d bytes refused", "/".join(handle.node.path), MAX_FILE)
            raise _fail(errno.EFBIG)
        data = handle.node.data
        assert data is not None
        if handle.append:
            off, end = len(data), len(data) + len(buf)  # O_APPEND: the buffer's end, whatever the kernel's size
        checked = self._check_syntax(handle.node, off, buf)
        if off > len(data):
            data.extend(bytes(off - len(data)))
        data[off:end] = buf
        self._touched(handle.node)
        if checked is not None:
            log.warning("write to /%s refused (EINVAL): %s; the previous version stays", "/".join(handle.node.path), checked)
            raise _fail(errno.EINVAL)
        return len(buf)

    def _check_syntax(self, node: Node, off: int, buf: bytes) -> str | None:
        """Why the bytes written so far can no longer be a document, or None.  Only a
        document written in order from its first byte by one writer is followed (a shell's
        ``>``, ``cp``, most programs); any other write leaves the check to the close.  The
        bad bytes are kept in the buffer, so the close fails too, and nothing is stored."""
        data = node.data
        assert data is not None
        prefix = self._prefixes.get(node.ino)
        if off == 0 and not data and node.writers == 1 and _is_document(node.path):
            prefix = self._prefixes[node.ino] = JsonPrefix()
        elif prefix is None:
            return None
        elif off != prefix.fed or len(data) != prefix.fed or node.writers != 1:
            del self._prefixes[node.ino]
            return None
        return None if prefix.feed(buf) else prefix.error

    @fuse_op
    async def flush(self, fh: int) -> None:
        handle = self._handles[fh]
        # An empty buffer is not committed (or rejected) before release: shells close a
        # duplicate of the descriptor right after open(O_TRUNC), before writing.
        if isinstance(handle, FileHandle) and handle.writable and handle.node.data:
            await self._commit_node(handle.node, handle.author, others=handle.node.writers > 1)

    @fuse_op
    async def fsync(self, fh: int, datasync: bool) -> None:
        handle = self._handles[fh]
        if isinstance(handle, FileHandle) and handle.writable:
            await self._commit_node(handle.node, handle.author, others=handle.node.writers > 1)

    @fuse_op
    async def release(self, fh: int) -> None:
        handle = self._handles.pop(fh)
        if isinstance(handle, ShardHandle):
            handle.node.opens -= 1
            self.inodes.release(handle.node)
            return
        assert isinstance(handle, FileHandle)
        node = handle.node
        try:
            if handle.writable:
                node.writers -= 1
                await self._commit_node(node, handle.author, others=node.writers > 0)
        finally:
            node.opens -= 1
            if handle.writable and node.writers == 0:
                self._prefixes.pop(node.ino, None)
                self._settle(node)
            self.inodes.release(node)

    def _note_read(self, path: Path, ctx: Any) -> None:
        if self.read_log:
            stem = codec.filename_to_stem(path[3]) or path[3]
            self._reads.append({"user": self._author(ctx), "ref": path[1], "top": path[0], "c": path[2], "k": stem, "t": _now()})

    def take_reads(self) -> list[dict[str, Any]]:
        reads, self._reads = self._reads, []
        return reads

    async def log_reads_forever(self, interval: float = 1.0) -> None:
        """Store the read log in batches, so opening a file only appends to a list."""
        while True:
            await trio.sleep(interval)
            reads = self.take_reads()
            if reads:
                try:
                    await self.runner.run(self.catalog.record_reads, reads)
                except ArgonError as exc:
                    log.error("read log: %d entries not stored: %s", len(reads), exc)
