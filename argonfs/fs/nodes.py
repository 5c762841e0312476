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
class Node:
    ino: int
    path: Path
    lookups: int = 0
    opens: int = 0
    #: the last attributes reported for this node (size, mtime, slot ...), see fs/operations.py
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return kind_of(self.path)


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
        """Drop a node nobody refers to any more (no kernel lookups, no open handles)."""
        if node.lookups <= 0 and node.opens <= 0 and node.path:
            self._by_ino.pop(node.ino, None)
            if self._by_path.get(node.path) is node:
                del self._by_path[node.path]

    def move(self, node: Node, path: Path) -> None:
        """After a rename the kernel keeps the inode: point it at the new path."""
        old = self._by_path.get(path)
        if old is not None and old is not node:
            del self._by_path[path]
            old.path = (*old.path[:-1], old.path[-1] + "\0replaced")  # unreachable until forgotten
            self.release(old)
        if self._by_path.get(node.path) is node:
            del self._by_path[node.path]
        node.path = path
        self._by_path[path] = node
