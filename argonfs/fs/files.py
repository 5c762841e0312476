"""Open files: open, read, write, and the commit of a file's buffer at close.

A file's bytes belong to its node (fs/nodes.py): writers share one buffer, a commit goes
to the node's current name, and a document's writers use direct I/O so readers keep
reading the committed version until the commit.  Bodies of listed documents are fetched
in batches ahead of the reader (``_prefetch``, ``_read_ahead``); a batch holding a
document that fails its check (``Corrupt``, from a remote) is fetched one by one, so only
that document answers EIO.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from itertools import islice
from typing import Any

import pyfuse3
import trio

from argonfs import codec
from argonfs.errors import ArgonError, Corrupt, InvalidDocument, ReadOnly
from argonfs.fs.base import (
    HOT_TTL,
    MAX_FILE,
    PREFETCH,
    SHARD_LISTINGS,
    FsBase,
    _branch,
    _check_new_name,
    _fail,
    _is_document,
    _name,
    _now,
    _slot,
    fuse_op,
    log,
)
from argonfs.fs.handles import FileHandle, ShardHandle, now_ns
from argonfs.fs.nodes import COLLDIR, FILE, SHARD, Node, Path, Scratch, is_dir, read_only_ref
from argonfs.fs.shards import Layout, shard_number
from argonfs.snapshot import Listed, Snapshot, Written


def _each_body(view: Snapshot, collection: str, entries: list[Listed]) -> list[bytes | None]:
    """Bodies fetched one at a time, None for each one that fails its check (``Corrupt``),
    which its reader then fetches alone and gets EIO for."""
    out: list[bytes | None] = []
    for entry in entries:
        try:
            out.append(view.bodies(collection, [entry])[0])
        except Corrupt:
            out.append(None)
    return out


class Files(FsBase):
    async def _body(self, node: Node) -> bytes:
        """The bytes of a document (those it was written with, or its rendering): its
        attributes name its version slot, whose body comes from the cache, with its
        listing neighbours, or alone."""
        await self._refresh(node)
        path = node.path
        slot, entry = node.info["slot"], node.info["entry"]
        data = self.bodies.get(slot)
        if data is None and slot in self._inflight:
            await self._inflight[slot].wait()
            data = self.bodies.get(slot)
        if data is None:
            await self._prefetch(slot)
            data = self.bodies.get(slot)
        if data is None:
            view = await self._view(path)
            data = (await self.runner.run(view.bodies, path[2], [entry]))[0]
            self.bodies.put(slot, data)
        if len(data) != entry.size:
            log.warning("/%s: stored size %d differs from rendered size %d", "/".join(path), entry.size, len(data))
        self._read_ahead(slot)
        return data

    async def _prefetch(self, slot: Any) -> None:
        """Fetch the bodies of ``slot`` and the documents listed after it, in one query."""
        listed = self._listed.following(slot, PREFETCH)
        if listed is None:
            return
        (view, collection), entries = listed
        wanted = [e for e in entries if _slot(e) not in self.bodies and _slot(e) not in self._inflight]
        if not wanted:
            return
        done = trio.Event()
        for e in wanted:
            self._inflight[_slot(e)] = done

        try:
            try:
                bodies: list[bytes | None] = list(await self.runner.run(view.bodies, collection, wanted))
            except Corrupt as exc:
                # one document failed its check: its neighbours are good, fetch them alone
                log.warning("%s: fetching the %d documents of its batch one by one", exc, len(wanted))
                bodies = await self.runner.run(_each_body, view, collection, wanted)
            for e, data in zip(wanted, bodies, strict=True):
                if data is not None:
                    self.bodies.put(_slot(e), data)
        finally:
            for e in wanted:
                self._inflight.pop(_slot(e), None)
            done.set()

    def _read_ahead(self, slot: Any) -> None:
        """Reading in listing order: fetch the next window in the background while the
        reader works through this one, so it rarely waits for MongoDB."""
        if self.nursery is None:
            return
        listed = self._listed.following(slot, PREFETCH // 2 + 1)
        if listed is None or len(listed[1]) <= PREFETCH // 2:
            return
        ahead = _slot(listed[1][-1])
        if ahead not in self.bodies and ahead not in self._inflight:
            self.nursery.start_soon(self._prefetch_in_background, ahead)

    async def _prefetch_in_background(self, slot: Any) -> None:
        try:
            await self._prefetch(slot)
        except Exception as exc:  # a reader that needs it will fetch it itself and see the error
            log.debug("read-ahead from %s failed: %s", slot, exc)

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
        if off > len(data):
            data.extend(bytes(off - len(data)))
        data[off:end] = buf
        self._touched(handle.node)
        return len(buf)

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
                self._settle(node)
            self.inodes.release(node)

    async def _commit_node(self, node: Node, author: str | None, *, others: bool) -> None:
        """Commit a node's buffer as one version, to the node's current name.  Bad
        content leaves the previous version and fails the close with EINVAL, unless
        other writers still have the file open: they may be half-way through writing
        it, so the last of them commits (or fails)."""
        if not node.dirty or node.unlinked or node.data is None:
            return
        if not _is_document(node.path):
            node.dirty = False  # a temporary: nothing to store
            return
        if node.scratch is not None and not node.data:
            return  # a new document with no content yet stays a scratch file
        node.dirty = False
        try:
            await self._commit(node, bytes(node.data), author, node.mtime_ns)
        except InvalidDocument:
            if others:
                node.dirty = True
                return
            if node.scratch is not None:  # nothing was ever stored: the new name goes away
                self._remove_scratch(node)
            else:
                self.invalidator.inode(node.ino)  # the kernel cached the rejected bytes
            raise
        except ArgonError:
            node.dirty = True
            raise

    def _settle(self, node: Node) -> None:
        """The last writer closed: a stored document's bytes leave memory (reads are
        served from the store again), and the kernel forgets pages that differ from the
        committed rendering."""
        if node.scratch is not None or node.data is None:
            return
        node.data = None
        node.dirty = False
        node.mtime_ns = None
        node.former_stems = ()
        if node.unlinked:
            return
        if node.info.get("served") != node.info.get("slot"):
            self.invalidator.inode(node.ino)  # a new version: the kernel's size and pages are the old one's

    async def _commit(self, node: Node, data: bytes, author: str | None, mtime: int | None = None, *, path: Path | None = None) -> Written:
        """Store ``data`` as the document the node's name (or ``path``, for a rename) says;
        no new version when the content and time are unchanged."""
        path = path or node.path
        stem = codec.filename_to_stem(path[3])
        if stem is None:
            raise InvalidDocument(f"{path[3]!r} is not a document name")
        branch = _branch(await self._view(path))
        try:
            doc = codec.parse(data)
            if node.former_stems and "_id" in doc and codec.id_to_stem(doc["_id"]) in node.former_stems and not codec.is_hashed_stem(stem):
                doc["_id"] = codec.stem_to_id(stem)  # renamed while open: the id follows the name, as mv does
            # a file created at this name (cp, a new document) is new: no need to ask
            # whether it repeats the stored version, which costs a lookup per file
            fresh = node.scratch is not None and node.scratch.fresh and path == node.path
            if not fresh and self.absent.knows(branch.key, path[2]):  # e.g. rsync's temporary renamed onto a new name
                fresh = self.absent.absent(branch.key, path[2], stem, await self._head(branch))
            # the bytes written are kept when they are JSON of this document (a filesystem
            # returns what was written: cmp, checksums and rsync's quick check agree)
            written, head = await self._write(branch.key, branch.put, path[2], doc, stem=stem, author=author, mtime=mtime, if_changed=not fresh, raw=data)
        except InvalidDocument as exc:
            log.error("write to /%s rejected, the previous version stays: %s", "/".join(path), exc)
            raise
        if fresh:  # always one new slot
            self._wrote(branch.key, head)
        else:  # perhaps no new slot (the content was unchanged), and then ``head`` is not one
            self._note_head(branch.key, head)
        self.absent.wrote(branch.key, path[2], stem, head if fresh else None)
        self._set_written(node, written, head)
        if node.scratch is not None:  # a new document: the store holds it now
            if written.rendered == data:
                # the kernel's pages of a scratch file are the bytes written to it, which
                # are this version's: nothing to invalidate at the last close (``_settle``)
                node.info["served"] = written.version
            node.scratch = None
            if self.scratch.get(node.path) is node:
                del self.scratch[node.path]
        if node.data is None and node.scratch is None:
            self.invalidator.inode(node.ino)  # written by path (truncate, touch): the kernel cached the old version
        return written

    def _set_written(self, node: Node, written: Written, head: int) -> None:
        self._set_doc_info(node, written, head)
        # the kernel's pages and size may not be this version's, even when it is the one
        # they were filled from (an O_TRUNC open shortens the cached size): ``_settle``
        # invalidates unless the commit says otherwise
        node.info.pop("served", None)
        self.bodies.put(written.version, written.rendered)

    def _remove_scratch(self, node: Node) -> None:
        if self.scratch.get(node.path) is node:
            del self.scratch[node.path]
        parent = self.inodes.find(node.path[:-1])
        if parent is not None:
            self.invalidator.entry(parent.ino, node.path[-1])
        self.inodes.detach(node)

    def unsaved(self) -> list[Path]:
        """Files open for writing with changes not committed (reported at unmount)."""
        nodes = {id(h.node): h.node for h in self._handles.values() if isinstance(h, FileHandle) and h.writable}
        return [n.path for n in nodes.values() if n.dirty and not n.unlinked and _is_document(n.path)]

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
