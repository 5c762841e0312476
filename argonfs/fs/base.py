"""The mount's state, and what every handler asks of it.

``FsBase`` holds what every handler needs (the inode table, scratch files, caches, the
catalog and the runner of its blocking calls), which snapshot a path lives in
(``_view``), a branch's head (``_head``), the bookkeeping of this daemon's writes
(``_write``, ``_wrote``), the checks before a write, a document node's attributes from a
listing entry (``_set_doc_info``) and the table of open handles.  What a path means now
is worked out in refresh.py; the handlers live by job in attributes.py,
directories.py, files.py and names.py; operations.py puts them together.  The
timeouts and limits are in limits.py, the error seam in seam.py.
"""

from __future__ import annotations

import collections
import functools
import os
import pwd
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, ParamSpec, TypeVar, cast

import pyfuse3
import trio

from argonfs import codec
from argonfs.errors import InvalidName, NotFound, ReadOnly
from argonfs.fs.absent import AbsentNames
from argonfs.fs.handles import BodyCache, DirHandle, FileHandle, ListingIndex, ShardHandle, now_ns
from argonfs.fs.invalidate import Invalidator
from argonfs.fs.limits import BRANCH_TIMEOUT, HEAD_TTL
from argonfs.fs.nodes import BRANCHES, BUNDLES, LABELS, InodeTable, Listing, Node, Path, read_only_ref
from argonfs.fs.prefix import JsonPrefix
from argonfs.fs.seam import log
from argonfs.fs.shards import SHARDS, Shard
from argonfs.snapshot import BranchHead, Catalog, Listed, Runner, Snapshot

P = ParamSpec("P")
T = TypeVar("T")


@functools.lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def _branch(view: Snapshot) -> BranchHead:
    """The branch a writable path lives in (``_check_writable`` has refused the rest)."""
    if view.kind != "branch":
        raise ReadOnly(f"{view.ref!r} is a read-only {view.kind}")
    return cast(BranchHead, view)


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
        #: per inode open for writing from its first byte: the syntax of what was written so far (fs/prefix.py)
        self._prefixes: dict[int, JsonPrefix] = {}
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

    def _add_handle(self, handle: FileHandle | DirHandle | ShardHandle) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = handle
        handle.node.opens += 1
        return fh


def _check_new_name(path: Path) -> None:
    """A name in a branch's collection that looks like a document but can be none (a
    leading ``~`` that is no escape, ``-0.json``, an over-long stem) is refused at once."""
    if codec.is_reserved_name(path[-1]):
        log.warning("/%s: refused, no document can have this name (docs/formats.md has the rules)", "/".join(path))
        raise InvalidName(f"{path[-1]!r} cannot be a document name")


def _is_document(path: Path) -> bool:
    return len(path) == 4 and path[0] == BRANCHES and path[2] != SHARDS and codec.filename_to_stem(path[3]) is not None
