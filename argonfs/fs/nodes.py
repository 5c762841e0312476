"""What a path in the mount means, and the inode table.

A node is identified by its path from the mount root, as a tuple of names:

    ()                                   the root
    ("branches",)  ("bundles",)  ("labels",)
    ("branches", REF)                    REF: a branch, or BRANCH@SEQ (read-only)
    ("branches", REF, COLLECTION)
    ("branches", REF, COLLECTION, NAME)  a document (<id>.json) or a scratch file
    ("bundles", ID, ...)                 the same, read-only
    ("labels", NAME)                     a symlink to ../bundles/<id>
    (TOP, REF, ".shards", COLLECTION, SHARD)  a bundle's or BRANCH@SEQ view's shard
                                         files (fs/shards.py); not listed in REF

Inode numbers are a 63-bit hash of the path, so they are stable for the life of the
mount without keeping every path ever seen: the table only holds
nodes the kernel still knows (lookup counts, released on forget).  A hash collision
between two live paths is resolved by probing the next number.

A listed document gets no node: readdir hands the kernel its inode number and a lookup
count, and the table remembers only which ``Listing`` page it came from (two dict
entries, no object per document).  The node is made from that page's entry when the
kernel first asks about the inode (getattr, open, a lookup of its name, a rename...),
with the lookup count the kernel holds; ``forget`` of a listed inode only counts down.
So ``ls -l`` of a large collection allocates nothing per document beyond what the
listing itself returned.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyfuse3

from argonfs import codec
from argonfs.fs.shards import SHARDS

Path = tuple[str, ...]

BRANCHES, BUNDLES, LABELS = "branches", "bundles", "labels"
TOP = (BRANCHES, BUNDLES, LABELS)

ROOT, TOPDIR, REFDIR, COLLDIR, FILE, LABEL = "root", "top", "ref", "collection", "file", "label"
#: the shard view (fs/shards.py): REF/.shards, REF/.shards/COLLECTION, and a shard file
SHARD_ROOT, SHARD_DIR, SHARD = "shard-root", "shard-collection", "shard"


def kind_of(path: Path) -> str:
    depth = len(path)
    if depth == 0:
        return ROOT
    if depth == 1:
        return TOPDIR
    if path[0] == LABELS:
        return LABEL
    if depth >= 3 and path[2] == SHARDS:
        return (SHARD_ROOT, SHARD_DIR, SHARD)[depth - 3]
    return (REFDIR, COLLDIR, FILE)[depth - 2]


def max_depth(path: Path) -> int:
    """How deep a path under ``path``'s ref can go: a document's depth, or a shard's."""
    return 5 if len(path) >= 3 and path[2] == SHARDS else 4


def is_dir(path: Path) -> bool:
    return kind_of(path) in (ROOT, TOPDIR, REFDIR, COLLDIR, SHARD_ROOT, SHARD_DIR)


def read_only_ref(path: Path) -> bool:
    """Bundles and BRANCH@SEQ views never change."""
    return len(path) >= 2 and (path[0] == BUNDLES or (path[0] == BRANCHES and "@" in path[1]))


INO_MASK = 2**63 - 1


def _hash(path: Path) -> int:
    """Python's tuple hash: stable for the life of the process, and cheap (listing a
    collection hashes every name)."""
    return hash(path) & INO_MASK


class Listing:
    """One page of a collection's listing (``entries``, what ``Snapshot.entries``
    yields, as of branch slot ``head``), with each document's inode number and its
    name as the kernel is given it."""

    __slots__ = ("__weakref__", "_at", "dir", "entries", "head", "inos", "mtimes", "names")

    def __init__(self, directory: Path, entries: list[Any], head: int | None, inos: array[int], names: list[bytes], mtimes: array[int] | None = None) -> None:
        self.dir = directory
        self.entries = entries
        self.head = head
        self.inos = inos
        self.names = names
        #: each entry's ``mtime_ns``, worked out with the page in the worker thread, so
        #: readdir's loop reads a number instead of calling a property per entry
        self.mtimes = mtimes if mtimes is not None else array("q", [e.mtime_ns for e in entries])
        self._at: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def path(self, i: int) -> Path:
        return (*self.dir, self.entries[i].stem + codec.SUFFIX)

    def index(self, ino: int) -> int:
        """Where the document of inode ``ino`` is in this page (indexed on first use)."""
        if self._at is None:
            self._at = dict(zip(self.inos, range(len(self.inos)), strict=True))
        return self._at[ino]


@dataclass(eq=False)
class Scratch:
    """What makes a file that the store does not hold: a temporary (an editor's swap
    file, a ``sed -i`` or rsync temporary) or a new ``<id>.json`` not yet committed.
    Its bytes are the node's ``data``; it becomes a document when committed, or when
    renamed onto a ``<id>.json`` name."""

    mode: int
    uid: int
    gid: int
    mtime_ns: int
    #: the time was set explicitly (utimensat), so it is kept when the file is committed
    mtime_set: bool = False
    #: an access time set by utimensat; None: the same as ``mtime_ns`` (a document keeps
    #: no atime, so it is dropped when the file is committed)
    atime_ns: int | None = None
    #: created at a document name the directory did not show (``create``): its first
    #: commit need not ask whether it repeats a stored version
    fresh: bool = False


@dataclass(eq=False, init=False)
class Node:
    """One inode.  Open files belong to the node, not to a path (as in pyfuse3's tmpfs
    and s3ql): a rename only points the node at another path, so writes through a
    descriptor opened before the rename land on the renamed file, and a commit at close
    goes to the node's current name.

    Listing a collection creates a node per document, so ``__init__`` sets only what
    has no class-level default (a third of the cost of the generated one)."""

    ino: int
    path: Path
    lookups: int = 0
    opens: int = 0
    #: the last attributes reported for this node (size, mtime, slot ...), see fs/operations.py
    info: dict[str, Any] = field(default_factory=dict)
    #: the file's bytes held in memory: always for a scratch file; for a document while
    #: it is open for writing (shared by every descriptor, so they all see one file)
    data: bytearray | None = None
    #: ``data`` differs from the stored version and is committed when a writer closes
    dirty: bool = False
    #: open descriptors that may write
    writers: int = 0
    scratch: Scratch | None = None
    #: removed from its directory (unlink, or replaced by a rename) while still open: it
    #: keeps working until its last close, and is then dropped, never committed
    unlinked: bool = False
    #: a modification time set while open for writing, committed with the content
    mtime_ns: int | None = None
    #: the ids of the names this node had before renames while open (see operations._commit);
    #: a tuple, shared while empty, so listing a collection makes no list per document
    former_stems: tuple[str, ...] = ()
    #: the st_size of the last attributes handed to the kernel, which it may still cache
    reported_size: int = -1

    def __init__(self, ino: int, path: Path) -> None:
        self.ino = ino
        self.path = path
        self.info = {}

    @property
    def kind(self) -> str:
        return kind_of(self.path)

    @property
    def in_memory(self) -> bool:
        """Whether the node's attributes and bytes come from memory, not the store."""
        return self.data is not None or self.unlinked


class InodeTable:
    """Nodes by inode and by path, and the inodes of listed documents that have none yet.

    An inode number is in at most one of ``_by_ino`` and ``listed``.  ``fill`` gives a
    node made from a listing entry its attributes (fs/base.py: ``_set_doc_info``)."""

    def __init__(self, fill: Callable[[Node, Any, int | None], None] | None = None) -> None:
        root = Node(pyfuse3.ROOT_INODE, ())
        root.lookups = 1  # the kernel never forgets the root
        self._by_ino: dict[int, Node] = {root.ino: root}
        self._by_path: dict[Path, Node] = {(): root}
        #: inode -> the listing page the kernel was last given it in, and the lookups
        #: the kernel holds on it (readdir fills both directly, see fs/directories.py)
        self.listed: dict[int, Listing] = {}
        self.listed_lookups: dict[int, int] = {}
        #: the node of an inode if it has one, as a bound ``dict.get`` (readdir's loop asks per entry)
        self.node_of: Callable[[int], Node | None] = self._by_ino.get
        self.fill = fill

    def __len__(self) -> int:
        return len(self._by_ino) + len(self.listed)

    def __getitem__(self, ino: int) -> Node:
        node = self._by_ino.get(ino)
        return node if node is not None else self._materialize(ino)

    def node(self, ino: int) -> Node | None:
        """The node of an inode if it has one (a listed document may have none yet)."""
        return self._by_ino.get(ino)

    def _materialize(self, ino: int) -> Node:
        """The node of a listed document, made now; KeyError if the inode is unknown."""
        listing = self.listed.pop(ino)
        i = listing.index(ino)
        node = Node(ino, listing.path(i))
        node.lookups = self.listed_lookups.pop(ino, 0)
        self._by_ino[ino] = node
        self._by_path[node.path] = node
        if self.fill is not None:
            self.fill(node, listing.entries[i], listing.head)
        return node

    def _listed_at(self, path: Path) -> int | None:
        """The inode of ``path`` if it is a listed document without a node."""
        ino = _hash(path)
        listing = self.listed.get(ino)
        return ino if listing is not None and listing.path(listing.index(ino)) == path else None

    def get(self, path: Path) -> Node:
        """The node of a path, created (without a lookup count) if needed."""
        node = self._by_path.get(path)
        if node is None:
            listed = self._listed_at(path)
            if listed is not None:
                return self._materialize(listed)
            ino = _hash(path)
            while ino < 2 or ino in self._by_ino or ino in self.listed:
                ino = (ino + 1) & INO_MASK
            node = Node(ino, path)
            self._by_ino[ino] = node
            self._by_path[path] = node
        return node

    def find(self, path: Path) -> Node | None:
        node = self._by_path.get(path)
        if node is None:
            listed = self._listed_at(path)
            if listed is not None:
                return self._materialize(listed)
        return node

    def claim(self, listing: Listing, i: int) -> Node | None:
        """Before readdir hands out entry ``i`` of ``listing`` by its inode alone: None
        if it may (no node has the inode, or only an earlier listing of the same path,
        which this one replaces), else the node to report (its own, or for a hash
        collision, one with another inode)."""
        ino = listing.inos[i]
        node = self._by_ino.get(ino)
        path = listing.path(i)
        if node is not None:
            return node if node.path == path else self.get(path)
        owner = self.listed.get(ino)
        if owner is None or owner is listing:
            return None
        if owner.path(owner.index(ino)) == path:
            self.listed[ino] = listing
            return None
        return self.get(path)

    def forget(self, ino: int, count: int) -> None:
        node = self._by_ino.get(ino)
        if node is None:
            left = self.listed_lookups.get(ino, 0) - count
            if left > 0:
                self.listed_lookups[ino] = left
            else:
                self.listed_lookups.pop(ino, None)
                self.listed.pop(ino, None)
            return
        node.lookups -= count
        self.release(node)

    def release(self, node: Node) -> None:
        """Drop a node nobody refers to any more (no kernel lookups, no open handles,
        and not a scratch file still in its directory)."""
        if node.lookups <= 0 and node.opens <= 0 and node.path and (node.scratch is None or node.unlinked):
            self._by_ino.pop(node.ino, None)
            if self._by_path.get(node.path) is node:
                del self._by_path[node.path]

    def detach(self, node: Node) -> None:
        """Take a node out of its directory (unlink, or replaced by a rename): open
        descriptors keep it working until they close; no path reaches it any more."""
        if self._by_path.get(node.path) is node:
            del self._by_path[node.path]
        node.unlinked = True
        node.dirty = False
        node.path = (*node.path[:-1], node.path[-1] + "\0unlinked")  # its kind stays FILE
        self.release(node)

    def move(self, node: Node, path: Path) -> None:
        """After a rename the kernel keeps the inode: point it at the new path."""
        old = self.find(path)
        if old is not None and old is not node:
            self.detach(old)
        if self._by_path.get(node.path) is node:
            del self._by_path[node.path]
        node.path = path
        self._by_path[path] = node
