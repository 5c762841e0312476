"""What a path in the mount means, and the inode table.

A node is identified by its path from the mount root, as a tuple of names:

    ()                                   the root
    ("branches",)  ("bundles",)  ("labels",)
    ("branches", REF)                    REF: a branch, or BRANCH@SEQ (read-only)
    ("branches", REF, COLLECTION)
    ("branches", REF, COLLECTION, NAME)  a document (<id>.json) or a scratch file
    ("bundles", ID, ...)                 the same, read-only
    ("labels", NAME)                     a symlink to ../bundles/<id>

Inode numbers are a 63-bit hash of the path, so they are stable for the life of the
mount without keeping every path ever seen: the table only holds
nodes the kernel still knows (lookup counts, released on forget).  A hash collision
between two live paths is resolved by probing the next number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyfuse3

Path = tuple[str, ...]

BRANCHES, BUNDLES, LABELS = "branches", "bundles", "labels"
TOP = (BRANCHES, BUNDLES, LABELS)

ROOT, TOPDIR, REFDIR, COLLDIR, FILE, LABEL = "root", "top", "ref", "collection", "file", "label"


def kind_of(path: Path) -> str:
    depth = len(path)
    if depth == 0:
        return ROOT
    if depth == 1:
        return TOPDIR
    if path[0] == LABELS:
        return LABEL
    return (REFDIR, COLLDIR, FILE)[depth - 2]


def is_dir(path: Path) -> bool:
    return kind_of(path) in (ROOT, TOPDIR, REFDIR, COLLDIR)


def read_only_ref(path: Path) -> bool:
    """Bundles and BRANCH@SEQ views never change."""
    return len(path) >= 2 and (path[0] == BUNDLES or (path[0] == BRANCHES and "@" in path[1]))


def _hash(path: Path) -> int:
    """Python's tuple hash: stable for the life of the process, and cheap (listing a
    collection hashes every name)."""
    return hash(path) & (2**63 - 1)


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
    def __init__(self) -> None:
        root = Node(pyfuse3.ROOT_INODE, ())
        root.lookups = 1  # the kernel never forgets the root
        self._by_ino: dict[int, Node] = {root.ino: root}
        self._by_path: dict[Path, Node] = {(): root}

    def __len__(self) -> int:
        return len(self._by_ino)

    def __getitem__(self, ino: int) -> Node:
        return self._by_ino[ino]

    def get(self, path: Path) -> Node:
        """The node of a path, created (without a lookup count) if needed."""
        node = self._by_path.get(path)
        if node is None:
            ino = _hash(path)
            while ino < 2 or ino in self._by_ino:
                ino = (ino + 1) & (2**63 - 1)
            node = Node(ino, path)
            self._by_ino[ino] = node
            self._by_path[path] = node
        return node

    def find(self, path: Path) -> Node | None:
        return self._by_path.get(path)

    def forget(self, ino: int, count: int) -> None:
        node = self._by_ino.get(ino)
        if node is None:
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
        old = self._by_path.get(path)
        if old is not None and old is not node:
            self.detach(old)
        if self._by_path.get(node.path) is node:
            del self._by_path[node.path]
        node.path = path
        self._by_path[path] = node
