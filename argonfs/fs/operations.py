"""The FUSE filesystem: pyfuse3 handlers over the versioned store.

Handlers are thin: each one is wrapped by ``fuse_op`` (the single place where argonfs
errors become errnos and unexpected exceptions are logged and answered with EIO) and
calls private helpers.  Every store call runs in a worker thread (store/aio.py).

Caching, docs/mount.md has the user's view of it:

* bundles and ``BRANCH@SEQ`` views never change: long kernel timeouts, page cache kept;
* branch heads change: kernel timeouts of ``BRANCH_TIMEOUT`` seconds, and attributes
  the daemon remembers are reused only while the branch's head seq is unchanged
  (one cheap probe, at most every ``HEAD_TTL`` seconds per branch);
* document bodies are cached by version slot, which never changes.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import pwd
import stat
import time
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Any, TypeVar

import pyfuse3
import trio

from argonfs import codec
from argonfs.errors import ArgonError, InvalidDocument, InvalidName, NotFound, ReadOnly
from argonfs.fs.handles import BodyCache, DirHandle, FileHandle, Item, ListingIndex, now_ns
from argonfs.fs.invalidate import Invalidator
from argonfs.fs.nodes import (
    BRANCHES,
    BUNDLES,
    COLLDIR,
    FILE,
    LABEL,
    LABELS,
    REFDIR,
    ROOT,
    TOP,
    TOPDIR,
    InodeTable,
    Node,
    Path,
    Scratch,
    is_dir,
    kind_of,
    read_only_ref,
)
from argonfs.store.repository import Document, now
from argonfs.store.versions import Entry, time_ns

log = logging.getLogger(__name__)

BRANCH_TIMEOUT = 1.0
FROZEN_TIMEOUT = 3600.0
HEAD_TTL = 0.25
PAGE = 1000
PREFETCH = 256
MAX_FILE = codec.MAX_BSON_SIZE
NAME_MAX = 255
#: what statfs reports: a capacity like other network filesystems (rclone, goofys), with
#: the repository's storage as used; see docs/mount.md
CAPACITY = 2**50
MAX_FILES = 2**40
USAGE_TTL = 30.0
#: for this long after a file of a collection was opened for writing through this mount,
#: its documents are read with direct I/O (see ``open``)
HOT_TTL = 60.0

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def fuse_op(fn: F) -> F:
    """The one seam where errors become errnos.  pyfuse3 unmounts if anything but
    FUSEError escapes a handler, so everything else is logged and answered with EIO."""

    @functools.wraps(fn)
    async def wrapper(self: ArgonOperations, *args: Any) -> Any:
        try:
            return await fn(self, *args)
        except pyfuse3.FUSEError:
            raise
        except NotFound as exc:
            log.debug("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(errno.ENOENT) from None
        except InvalidDocument as exc:  # already logged with its path where it was rejected
            log.debug("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except ArgonError as exc:
            log.warning("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except Exception:
            log.exception("unexpected error in %s%r", fn.__name__, args)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper  # type: ignore[return-value]


def _fail(code: int) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(code)


def _name(raw: bytes) -> str:
    if len(raw) > NAME_MAX:
        raise _fail(errno.ENAMETOOLONG)
    return os.fsdecode(raw)


@functools.lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


class ArgonOperations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, store: Any, *, uid: int | None = None, gid: int | None = None, read_log: bool = False) -> None:
        super().__init__()
        #: reads not yet stored (``--read-log``), flushed in batches by ``log_reads_forever``
        self.read_log = read_log
        self._reads: list[dict[str, Any]] = []
        self.store = store  # an AsyncRepository
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        self.started_ns = now_ns()
        self.inodes = InodeTable()
        #: scratch files by path: the directory entries of files the store does not hold
        self.scratch: dict[Path, Node] = {}
        self.bodies = BodyCache()
        #: kernel cache invalidations, served by a thread of their own (fs/invalidate.py)
        self.invalidator = Invalidator()
        self._usage: tuple[dict[str, int], float] | None = None
        self._handles: dict[int, FileHandle | DirHandle] = {}
        self._next_fh = 1
        self._views: dict[tuple[str, str], tuple[Any, float]] = {}
        self._heads: dict[Any, tuple[int, float]] = {}
        #: branch id -> a head seq at which the branch was seen unprotected
        self._unprotected: dict[Any, int] = {}
        #: collection path -> when a file in it was last opened for writing here
        self._written: dict[Path, float] = {}
        self._listed = ListingIndex()
        self._inflight: dict[Any, trio.Event] = {}
        #: where background work (read-ahead) runs; set by the daemon
        self.nursery: trio.Nursery | None = None

    # ------------------------------------------------------------------ views and heads

    async def _view(self, path: Path) -> Any:
        """The store view a path lives in (its top directory and ref)."""
        key = (path[0], path[1])
        cached = self._views.get(key)
        if cached is not None and (cached[1] == 0 or time.monotonic() < cached[1]):
            return cached[0]
        try:
            view = await self.store.call("resolve", path[1])
        except InvalidName as exc:
            raise NotFound(str(exc)) from None
        expected = ("bundle",) if path[0] == BUNDLES else ("branch", "seq")
        if view.kind not in expected:
            raise NotFound(f"no {path[0][:-1]} {path[1]!r}")
        frozen = view.kind != "branch"
        self._views[key] = (view, 0 if frozen else time.monotonic() + BRANCH_TIMEOUT)
        return view

    async def _head(self, view: Any) -> int | None:
        """The current head of a branch view (cached briefly), None for frozen views."""
        if view.seq is not None:
            return view.seq
        bid = view.branch_id
        cached = self._heads.get(bid)
        if cached is not None and time.monotonic() - cached[1] < HEAD_TTL:
            return cached[0]
        pinned = await self.store.call("pin", view)
        self._note_head(bid, pinned.seq)
        return pinned.seq

    def _note_head(self, bid: Any, seq: int) -> None:
        cached = self._heads.get(bid)
        if cached is None or seq >= cached[0]:
            self._heads[bid] = (seq, time.monotonic())

    def _author(self, ctx: Any) -> str:
        return _user(ctx.uid)

    async def _check_unprotected(self, path: Path) -> None:
        """Refuse opening a document of a protected branch for writing at ``open()``,
        where a shell's ``echo > file`` reports it (an error at close is ignored)."""
        if len(path) < 2 or path[0] != BRANCHES or read_only_ref(path):
            return
        view = await self._view(path)
        head = await self._head(view)
        if self._unprotected.get(view.branch_id) != head:  # protection is a record in the branch's own slots
            await self.store.call("check_writable", view, head)
            self._unprotected[view.branch_id] = head

    def _check_writable(self, path: Path) -> None:
        if len(path) < 2 or path[0] == LABELS:
            return
        if read_only_ref(path):
            raise ReadOnly(f"/{'/'.join(path[:2])} is read-only")

    # ------------------------------------------------------------------ attributes

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
        return a

    def _set_doc_info(self, node: Node, entry: Any, head: int | None) -> None:
        slot = (entry.branch_id, entry.seq)
        old = node.info.get("slot")
        if old is not None and old != slot and not read_only_ref(node.path):
            self.bodies.discard(old)  # superseded in a branch: keep memory for current versions
        node.info = {"size": entry.size, "slot": slot, "entry": entry, "head": head, "valid": True}

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
                subdirs = len(await self.store.call("list_branches"))
            elif path[0] == BUNDLES:
                subdirs = len(await self.store.call("list_bundles"))
            else:
                subdirs = 0
            node.info = {"nlink": 2 + subdirs, "until": time.monotonic() + BRANCH_TIMEOUT}
        elif kind == LABEL:
            if time.monotonic() < node.info.get("until", 0):
                return  # every path walk through a label reads the link: ask the store once per timeout
            label = await self.store.call("label", path[1])
            node.info = {"target": f"../{BUNDLES}/{label['bundle']}".encode(), "mtime_ns": time_ns(label["time"]), "until": time.monotonic() + BRANCH_TIMEOUT}
        elif node.in_memory:
            return  # a scratch file, a document open for writing, an unlinked open file
        else:
            view = await self._view(path)
            if kind != FILE and time.monotonic() < node.info.get("until", 0):
                return  # directories: existence is re-checked once per timeout
            head = await self._head(view)
            if node.info.get("head", -1) == head and node.info.get("valid"):
                return
            if kind == REFDIR:
                info: dict[str, Any] = {"nlink": 2 + len(await self.store.call("collections", view))}
                if view.kind == "bundle":
                    bundle = await self.store.call("bundle", view.bundle)
                    info["mtime_ns"] = time_ns(bundle.time)
            elif kind == COLLDIR:
                if not await self.store.call("collection_exists", view, path[2]):
                    raise NotFound(f"no collection {path[2]!r} in {view.ref}")
                info = {"nlink": 2}
            else:
                stem = codec.filename_to_stem(path[3])
                if stem is None:
                    raise NotFound(f"no file {path[3]!r}")
                entry = await self.store.call("stat", view, path[2], stem)
                self._set_doc_info(node, entry, head)
                return
            info["head"] = head
            info["valid"] = True
            info["until"] = time.monotonic() + (FROZEN_TIMEOUT if view.seq is not None else BRANCH_TIMEOUT)
            node.info = info

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

    # ------------------------------------------------------------------ lookup and attributes

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
        if len(path) > 4 or (len(path) == 3 and path[0] == LABELS) or (len(path) == 1 and text not in TOP):
            raise NotFound(f"no {text!r}")
        return self._counted(await self._lookup(path))

    @fuse_op
    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
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
    async def readlink(self, inode: int, ctx: Any = None) -> bytes:
        node = self.inodes[inode]
        if node.kind != LABEL:
            raise _fail(errno.EINVAL)
        await self._refresh(node)
        return node.info["target"]

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
            self._usage = (await self.store.call("usage"), time.monotonic() + USAGE_TTL)
        return self._usage[0]

    # ------------------------------------------------------------------ directories

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
            head += [(b.name, self.inodes.get((BRANCHES, b.name))) for b in await self.store.call("list_branches")]
        elif path == (BUNDLES,):
            for bundle in await self.store.call("list_bundles"):
                child = self.inodes.get((BUNDLES, bundle.id))
                child.info = child.info or {"mtime_ns": time_ns(bundle.time), "nlink": 2}
                head.append((bundle.id, child))
        elif path == (LABELS,):
            for label in await self.store.call("list_labels"):
                child = self.inodes.get((LABELS, label["name"]))
                child.info = {"target": f"../{BUNDLES}/{label['bundle']}".encode(), "mtime_ns": time_ns(label["time"])}
                head.append((label["name"], child))
        elif kind == REFDIR:
            view = await self._view(path)
            head += [(c, self.inodes.get((*path, c))) for c in await self.store.call("collections", view)]
        elif kind == COLLDIR:
            view = await self.store.call("pin", await self._view(path))
            head += [(p[-1], n) for p, n in sorted(self.scratch.items()) if p[:-1] == path]
            pages = self._doc_pages(path, view)
        else:
            raise _fail(errno.ENOTDIR)
        return self._add_handle(DirHandle(node, head, pages))

    def _doc_pages(self, path: Path, view: Any) -> Callable[[str], Callable[[], Awaitable[list[Item]]]]:
        """Streams of a collection's documents, a page per worker-thread round trip."""
        head = view.seq

        def open_after(after: str) -> Callable[[], Awaitable[list[Item]]]:
            stream = None

            def page() -> list[Any]:
                nonlocal stream
                if stream is None:
                    stream = self.store.repo.entries(view, path[2], after=after)
                return list(islice(stream, PAGE))

            async def fetch() -> list[Item]:
                entries = await self.store.run(page)
                items: list[Item] = []
                for entry in entries:
                    name = entry.stem + codec.SUFFIX
                    child_path = (*path, name)
                    if child_path in self.scratch:
                        continue
                    child = self.inodes.get(child_path)
                    if not child.in_memory:
                        self._set_doc_info(child, entry, head)
                    items.append((name, child))
                if entries:
                    self._listed.add((path, entries[0].stem), path[2], entries, _slot)
                return items

            return fetch

        return open_after

    @fuse_op
    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        handle = self._handles[fh]
        assert isinstance(handle, DirHandle)
        await handle.seek(start_id)
        while (item := await handle.peek()) is not None:
            name, child = item
            if not pyfuse3.readdir_reply(token, os.fsencode(name), self._entry(child), handle.pos + 1):
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
            await self.store.call("create_branch", path[1], author=self._author(ctx))
            self._views.pop((BRANCHES, path[1]), None)
        elif parent.kind == REFDIR:
            self._check_writable(path)
            view = await self._view(path)
            seq = await self.store.call("create_collection", view, path[2], author=self._author(ctx))
            self._note_head(view.branch_id, seq)
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
            view = await self._view(path)
            seq = await self.store.call("drop_collection", view, path[2], author=self._author(ctx))
            self._note_head(view.branch_id, seq)
            for p in [p for p in self.scratch if p[:-1] == path]:
                self.inodes.detach(self.scratch.pop(p))
        elif kind == REFDIR and path[0] == BRANCHES:
            view = await self._view(path)
            if await self.store.call("collections", view):
                raise _fail(errno.ENOTEMPTY)
            await self.store.call("delete_branch", path[1])
            self._views.pop((BRANCHES, path[1]), None)
        else:
            raise _fail(errno.EPERM)
        node = self.inodes.find(path)
        if node is not None:
            node.info = {}

    # ------------------------------------------------------------------ labels

    @fuse_op
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("symlink %s -> %s", path, target)
        if parent.path != (LABELS,):
            raise _fail(errno.EPERM)
        bundle = os.fsdecode(target).rstrip("/").rsplit("/", 1)[-1]
        await self.store.call("set_label", path[1], bundle, author=self._author(ctx))
        node = self.inodes.find(path)
        if node is not None:
            node.info = {}  # read the new target now, not after the label timeout
        return self._counted(await self._lookup(path))

    @fuse_op
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        log.debug("link %s", self.inodes[inode].path)
        raise _fail(errno.EPERM)  # a document has one name; cp makes a copy

    # ------------------------------------------------------------------ files

    def _add_handle(self, handle: FileHandle | DirHandle) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = handle
        handle.node.opens += 1
        return fh

    async def _body(self, node: Node) -> bytes:
        """The rendered bytes of a document: its attributes name its version slot, whose
        body comes from the cache, with its listing neighbours, or alone."""
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
            docs = await self.store.run(lambda: list(self.store.repo.bodies(path[2], [entry])))
            data = docs[0].rendered
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
        collection, entries = listed
        wanted = [e for e in entries if _slot(e) not in self.bodies and _slot(e) not in self._inflight]
        if not wanted:
            return
        done = trio.Event()
        for e in wanted:
            self._inflight[_slot(e)] = done

        def fetch() -> list[tuple[Any, bytes]]:
            docs = self.store.repo.bodies(collection, wanted)
            return [(_slot(e), d.rendered) for e, d in zip(wanted, docs, strict=True)]

        try:
            for key, data in await self.store.run(fetch):
                self.bodies.put(key, data)
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
            node.scratch = Scratch(stat.S_IFREG | stat.S_IMODE(mode), ctx.uid, ctx.gid, now_ns())
            node.data = bytearray()
            self.scratch[path] = node
        node.writers += 1
        node.dirty = True
        fh = self._add_handle(FileHandle(node, b"", True, self._author(ctx), shared=True))
        return pyfuse3.FileInfo(fh=fh), self._counted(node)

    @fuse_op
    async def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self._handles[fh]
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
        written, node.data = node.data, None
        node.dirty = False
        node.mtime_ns = None
        node.former_stems.clear()
        if node.unlinked:
            return
        if node.info.get("served") != node.info.get("slot"):
            self.invalidator.inode(node.ino)  # a new version: the kernel's size and pages are the old one's

    async def _commit(self, node: Node, data: bytes, author: str | None, mtime: int | None = None, *, path: Path | None = None) -> Document:
        """Store ``data`` as the document the node's name (or ``path``, for a rename) says;
        no new version when the content and time are unchanged."""
        path = path or node.path
        stem = codec.filename_to_stem(path[3])
        if stem is None:
            raise InvalidDocument(f"{path[3]!r} is not a document name")
        view = await self._view(path)
        try:
            doc = codec.parse(data)
            if node.former_stems and "_id" in doc and codec.id_to_stem(doc["_id"]) in node.former_stems and not codec.is_hashed_stem(stem):
                doc["_id"] = codec.stem_to_id(stem)  # renamed while open: the id follows the name, as mv does
            written = await self.store.call("put", view, path[2], doc, stem=stem, author=author, mtime=mtime, if_changed=True)
        except InvalidDocument as exc:
            log.error("write to /%s rejected, the previous version stays: %s", "/".join(path), exc)
            raise
        self._note_head(view.branch_id, written.seq)
        self._set_written(node, view, written)
        if node.scratch is not None:  # a new document: the store holds it now
            node.scratch = None
            if self.scratch.get(node.path) is node:
                del self.scratch[node.path]
        if node.data is None and node.scratch is None:
            self.invalidator.inode(node.ino)  # written by path (truncate, touch): the kernel cached the old version
        return written

    def _set_written(self, node: Node, view: Any, written: Document) -> None:
        entry = Entry(written.stem, written.size, written.hash, written.seq, view.branch_id, written.time, written.author, written.mtime)
        self._set_doc_info(node, entry, written.seq)
        self.bodies.put(node.info["slot"], written.rendered)

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

    # ------------------------------------------------------------------ read log

    def _note_read(self, path: Path, ctx: Any) -> None:
        if self.read_log:
            stem = codec.filename_to_stem(path[3]) or path[3]
            self._reads.append({"user": self._author(ctx), "ref": path[1], "top": path[0], "c": path[2], "k": stem, "t": now()})

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
                    await self.store.call("record_reads", reads)
                except ArgonError as exc:
                    log.error("read log: %d entries not stored: %s", len(reads), exc)

    # ------------------------------------------------------------------ unlink and rename

    @fuse_op
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        parent = self.inodes[parent_inode]
        path = (*parent.path, _name(name))
        log.debug("unlink %s", path)
        kind = kind_of(path)
        if kind == LABEL:
            await self.store.call("delete_label", path[1], author=self._author(ctx))
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
        view = await self._view(path)
        seq = await self.store.call("delete", view, path[2], stem, author=self._author(ctx))
        self._note_head(view.branch_id, seq)
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
        view = await self._view(src)
        if node.scratch is None and _is_document(dst):  # a document renamed: one atomic move
            stem, new_stem = codec.filename_to_stem(src[3]) or "", codec.filename_to_stem(dst[3]) or ""
            written, slot = await self.store.call("rename", view, src[2], stem, dst[2], new_stem, author=author)
            self._note_head(view.branch_id, slot)
            self._set_written(node, view, written)
            node.info["head"] = slot
            if node.data is not None:
                node.former_stems.append(stem)  # its open buffer still says the old _id
        elif node.scratch is None:  # a document renamed to a temporary name (a backup, mv x.json x.bak)
            data = node.data if node.data is not None else bytearray(await self._body(node))
            seq = await self.store.call("delete", view, src[2], codec.filename_to_stem(src[3]) or "", author=author)
            self._note_head(view.branch_id, seq)
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
        label = await self.store.call("label", src[1])
        await self.store.call("set_label", dst[1], label["bundle"], author=author)
        await self.store.call("delete_label", src[1], author=author)
        node = self.inodes.find(src)
        if node is not None:
            self.inodes.move(node, dst)
            node.info = {}  # read again: the target is the source's

    async def _exists(self, path: Path) -> bool:
        try:
            await self._lookup(path)
        except NotFound:
            return False
        return True


def _check_new_name(path: Path) -> None:
    """A name in a branch's collection that looks like a document but can be none (a
    leading ``~`` that is no escape, ``-0.json``, an over-long stem) is refused at once."""
    if codec.is_reserved_name(path[-1]):
        log.warning("/%s: refused, no document can have this name (docs/formats.md has the rules)", "/".join(path))
        raise InvalidName(f"{path[-1]!r} cannot be a document name")


def _is_document(path: Path) -> bool:
    return len(path) == 4 and path[0] == BRANCHES and codec.filename_to_stem(path[3]) is not None


def _resize(data: bytearray, size: int) -> None:
    if size > MAX_FILE:
        raise _fail(errno.EFBIG)
    if size < len(data):
        del data[size:]
    else:
        data.extend(bytes(size - len(data)))


def _slot(entry: Entry) -> tuple[Any, int]:
    return (entry.branch_id, entry.seq)
