"""The mount's core: its state, the one error seam, and what a path means now.

``FsBase`` holds what every handler needs (the inode table, scratch files, caches, the
catalog and the runner of its blocking calls) and works out a node's attributes: which
snapshot a path lives in (``_view``), a branch's head (``_head``), and the attributes the
kernel is given (``_entry``, ``_refresh``, ``_lookup``).  The handlers live by job in
attributes.py, directories.py, files.py and names.py; operations.py puts them together.

Caching, docs/mount.md has the user's view of it:

* bundles and ``BRANCH@SEQ`` views never change: long kernel timeouts, page cache kept;
* branch heads change: kernel timeouts of ``BRANCH_TIMEOUT`` seconds, and attributes
  the daemon remembers are reused only while the branch's head seq is unchanged
  (one cheap probe, at most every ``HEAD_TTL`` seconds per branch);
* document bodies are cached by version, which never changes;
* the shard view of a frozen state (fs/shards.py) is summarised once per collection,
  from one listing: a shard's size needs no body;
* a name a complete listing did not show, and that this daemon has not written since,
  is absent while every later slot of the branch is this daemon's own write
  (fs/absent.py): ``cp -r`` into a collection asks the store nothing before each create.
"""

from __future__ import annotations

import collections
import errno
import functools
import logging
import os
import pwd
import stat
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterator
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

import pyfuse3
import trio

from argonfs import codec
from argonfs.errors import ArgonError, InvalidDocument, InvalidName, NotFound, ReadOnly
from argonfs.fs.absent import AbsentNames
from argonfs.fs.handles import BodyCache, DirHandle, FileHandle, ListingIndex, ShardHandle, now_ns
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
    SHARD,
    SHARD_DIR,
    SHARD_ROOT,
    TOP,
    TOPDIR,
    InodeTable,
    Listing,
    Node,
    Path,
    kind_of,
    read_only_ref,
)
from argonfs.fs.shards import SHARDS, Shard, shard_number, summarize
from argonfs.snapshot import Branch, Catalog, Listed, Runner, Snapshot

log = logging.getLogger("argonfs.fs")

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
#: collections whose shard summaries (fs/shards.py) are kept
SHARD_SUMMARIES = 256
#: shards whose listing entries are kept, so opening one again asks the store nothing
SHARD_LISTINGS = 32
#: for this long after a file of a collection was opened for writing through this mount,
#: its documents are read with direct I/O (see ``open``)
HOT_TTL = 60.0

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
P = ParamSpec("P")
T = TypeVar("T")


def fuse_op(fn: F) -> F:
    """The one seam where errors become errnos.  pyfuse3 unmounts if anything but
    FUSEError escapes a handler, so everything else is logged and answered with EIO."""

    @functools.wraps(fn)
    async def wrapper(self: FsBase, *args: Any) -> Any:
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


def _branch(view: Snapshot) -> Branch:
    """The branch a writable path lives in (``_check_writable`` has refused the rest)."""
    if view.kind != "branch":
        raise ReadOnly(f"{view.ref!r} is a read-only {view.kind}")
    return cast(Branch, view)


def _now() -> datetime:
    """Wall-clock time at MongoDB's millisecond precision, naive UTC (the read log)."""
    t = datetime.now(UTC).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


class FsBase(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, catalog: Catalog, runner: Runner, *, uid: int | None = None, gid: int | None = None, read_log: bool = False) -> None:
        super().__init__()
        #: reads not yet stored (``--read-log``), flushed in batches by ``log_reads_forever``
        self.read_log = read_log
        self._reads: list[dict[str, Any]] = []
        self.catalog = catalog
        #: runs the blocking catalog and snapshot calls in worker threads
        self.runner = runner
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        self.started_ns = now_ns()
        self.inodes = InodeTable(self._fill_listed)
        #: scratch files by path: the directory entries of files the store does not hold
        self.scratch: dict[Path, Node] = {}
        self.bodies = BodyCache()
        #: kernel cache invalidations, served by a thread of their own (fs/invalidate.py)
        self.invalidator = Invalidator()
        self._usage: tuple[dict[str, int], float] | None = None
        self._handles: dict[int, FileHandle | DirHandle | ShardHandle] = {}
        self._next_fh = 1
        self._views: dict[tuple[str, str], tuple[Snapshot, float]] = {}
        self._heads: dict[Any, tuple[int, float]] = {}
        #: branch id -> a head seq at which the branch was seen unprotected
        self._unprotected: dict[Any, int] = {}
        #: collection path -> when a file in it was last opened for writing here
        self._written: dict[Path, float] = {}
        self._listed = ListingIndex()
        #: listing pages of immutable states (a bundle, a branch at one head) by state
        #: and the name they start after, while the kernel holds inodes listed in them
        self.pages: weakref.WeakValueDictionary[tuple[Hashable, str], Listing] = weakref.WeakValueDictionary()
        #: names known to be absent from collections of branches, without asking the store
        self.absent = AbsentNames()
        self._inflight: dict[Any, trio.Event] = {}
        #: (top, ref, collection) of a frozen state -> its shards (fs/shards.py), LRU
        self._shard_summaries: collections.OrderedDict[Path, list[Shard]] = collections.OrderedDict()
        #: a shard's path -> its documents' listing entries, LRU
        self.shard_listings: collections.OrderedDict[Path, list[Listed]] = collections.OrderedDict()
        #: collections whose shard summary a request is listing now
        self._shards_inflight: dict[Path, trio.Event] = {}
        #: where background work (read-ahead) runs; set by the daemon
        self.nursery: trio.Nursery | None = None

    async def _view(self, path: Path) -> Snapshot:
        """The snapshot a path lives in (its top directory and ref)."""
        key = (path[0], path[1])
        cached = self._views.get(key)
        if cached is not None and (cached[1] == 0 or time.monotonic() < cached[1]):
            return cached[0]
        try:
            view: Snapshot = await self.runner.run(self.catalog.resolve, path[1])
        except InvalidName as exc:
            raise NotFound(str(exc)) from None
        expected = ("bundle",) if path[0] == BUNDLES else ("branch", "seq")
        if view.kind not in expected:
            raise NotFound(f"no {path[0][:-1]} {path[1]!r}")
        frozen = view.kind != "branch"
        self._views[key] = (view, 0 if frozen else time.monotonic() + BRANCH_TIMEOUT)
        return view

    async def _head(self, view: Snapshot) -> int:
        """The current head of a branch (cached briefly); a frozen view's own slot."""
        if view.kind != "branch":
            return view.seq or 0
        branch = _branch(view)
        cached = self._heads.get(branch.key)
        if cached is not None and time.monotonic() - cached[1] < HEAD_TTL:
            return cached[0]
        seq = await self.runner.run(branch.head)
        self._note_head(branch.key, seq)
        self.absent.probed(branch.key, seq)
        return seq

    def _note_head(self, bid: Any, seq: int) -> None:
        cached = self._heads.get(bid)
        if cached is None or seq >= cached[0]:
            self._heads[bid] = (seq, time.monotonic())

    async def _write(self, bid: Hashable, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a write to branch ``bid`` in a worker thread, counted while in flight (a
        slot above what fs/absent.py accounted for may be this write's)."""
        self.absent.begin_write(bid)
        try:
            return await self.runner.run(fn, *args, **kwargs)
        finally:
            self.absent.end_write(bid)

    def _wrote(self, bid: Hashable, slot: int) -> None:
        """A write of this daemon landed at ``slot``, the branch's head as far as it
        knows: the write was checked against protection there, so ``open()`` need not
        ask again until the head moves."""
        self._note_head(bid, slot)
        if self._heads[bid][0] == slot:
            self._unprotected[bid] = slot

    def _author(self, ctx: Any) -> str:
        return _user(ctx.uid)

    async def _check_unprotected(self, path: Path) -> None:
        """Refuse opening a document of a protected branch for writing at ``open()``,
        where a shell's ``echo > file`` reports it (an error at close is ignored)."""
        if len(path) < 2 or path[0] != BRANCHES or read_only_ref(path):
            return
        branch = _branch(await self._view(path))
        head = await self._head(branch)
        if self._unprotected.get(branch.key) != head:  # protection is a record in the branch's own slots
            await self.runner.run(branch.check_writable, head)
            self._unprotected[branch.key] = head

    def _check_writable(self, path: Path) -> None:
        if len(path) < 2 or path[0] == LABELS:
            return
        if read_only_ref(path):
            raise ReadOnly(f"/{'/'.join(path[:2])} is read-only")

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

    def _set_doc_info(self, node: Node, entry: Listed, head: int | None, slot: Any = None) -> None:
        """``slot``: ``entry.version``, when the caller has it already."""
        if slot is None:
            slot = entry.version
        info = node.info
        old = info.get("slot")
        if old is not None and old != slot and not read_only_ref(node.path):
            self.bodies.discard(old)  # superseded in a branch: keep memory for current versions
        served = info.get("served")
        node.info = {"size": entry.size, "slot": slot, "entry": entry, "head": head, "valid": True}
        if served is not None:
            # the version the kernel's page cache holds (``open``): a listing or a stat
            # at a later head that shows the same version leaves those pages valid
            node.info["served"] = served

    def _fill_listed(self, node: Node, entry: Listed, head: int | None) -> None:
        """A node made for a document readdir handed out by inode alone (fs/nodes.py):
        the attributes the kernel was given then."""
        self._set_doc_info(node, entry, head)
        node.reported_size = entry.size

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

    def _add_handle(self, handle: FileHandle | DirHandle | ShardHandle) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = handle
        handle.node.opens += 1
        return fh

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
    return len(path) == 4 and path[0] == BRANCHES and path[2] != SHARDS and codec.filename_to_stem(path[3]) is not None


def _resize(data: bytearray, size: int) -> None:
    if size > MAX_FILE:
        raise _fail(errno.EFBIG)
    if size < len(data):
        del data[size:]
    else:
        data.extend(bytes(size - len(data)))


def _slot(entry: Listed) -> Any:
    return entry.version
