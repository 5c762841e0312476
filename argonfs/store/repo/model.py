"""The values the store hands out, and the clock and ids they carry.

Branches, bundles, views (resolved refs), documents, log entries and the results of a
merge or an import: frozen dataclasses (the two results are filled in as the work
goes), no I/O.  ``Repository`` returns them; ``argonfs`` re-exports the public ones.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson.objectid import ObjectId

from argonfs import codec
from argonfs.store.engine import versions as v

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def now() -> datetime:
    """Wall-clock time at MongoDB's millisecond precision."""
    t = datetime.now(UTC).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_bundle_id() -> str:
    """14 characters: 9 of Crockford base32 milliseconds, then 5 random; sorts by time."""
    ms = int(time.time() * 1000)
    head = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(9)))
    return head + "".join(secrets.choice(_CROCKFORD) for _ in range(5))


@dataclass(frozen=True)
class Branch:
    name: str
    id: ObjectId
    parent: ObjectId | None
    parent_name: str | None
    fork_seq: int
    created: datetime
    author: str
    #: whether direct writes are refused; None when not looked up (see list_branches)
    protected: bool | None = None


@dataclass(frozen=True)
class Bundle:
    id: str
    branch_id: ObjectId
    branch: str
    seq: int
    message: str
    author: str
    time: datetime


@dataclass(frozen=True)
class View:
    """A resolved ref: the layers to read, and whether (and where) writes go."""

    ref: str
    chain: tuple[v.Layer, ...]
    kind: str  # "branch", "seq", "bundle" or "label"
    branch: str | None = None
    bundle: str | None = None

    @property
    def writable(self) -> bool:
        return self.kind == "branch"

    @property
    def branch_id(self) -> ObjectId:
        return self.chain[0][0]

    @property
    def seq(self) -> int | None:
        return self.chain[0][1]


@dataclass(frozen=True)
class Document:
    collection: str
    stem: str
    doc: dict[str, Any]
    seq: int
    size: int
    hash: str
    time: datetime
    author: str
    #: an explicitly set modification time (ns since the epoch), see versions.Entry
    mtime: int | None = None
    #: the branch whose slot ``seq`` is (None: not said; the view's own branch for a write)
    branch_id: Any = None
    #: False when ``put(if_changed=True)`` found the content unchanged and wrote nothing:
    #: ``seq`` is then the existing version's slot, possibly in an ancestor branch
    stored: bool = True
    #: the bytes the version was written with, when it keeps them (a write through the
    #: mount of JSON other than the canonical rendering); None: rendered canonically
    raw: bytes | None = None

    @property
    def rendered(self) -> bytes:
        """The version's bytes: the ones it was written with, or the canonical rendering."""
        return self.raw if self.raw is not None else codec.render(self.doc)

    @property
    def mtime_ns(self) -> int:
        """The modification time shown for this version, in ns since the epoch."""
        return self.mtime if self.mtime is not None else v.time_ns(self.time)


@dataclass(frozen=True)
class LogEntry:
    """One version: which branch and seq, when, who, what (``put``, ``del``, or a
    collection marker ``drop``/``mkcol`` with no ``stem``), and the document's size."""

    branch: str
    seq: int
    time: datetime
    author: str
    op: str
    collection: str
    stem: str | None
    size: int | None
    #: the merge or revert (transaction id, and which of the two) that wrote it, if any
    txn: str | None = None
    txn_kind: str | None = None
    #: the slot that holds this version (``get_version`` reads it); ``seq`` is where it
    #: became visible: the same slot, or for a transaction's version its commit's slot
    slot: int = 0
    #: which layer of the ref's chain holds it (0: the ref's own branch, 1: its parent,
    #: ...); with ``slot``, its position in the log (``log(below=...)``)
    layer: int = 0


#: what a merge or a revert does to one document of the target
ADDED, UPDATED, DELETED = "added", "updated", "deleted"


@dataclass
class MergeResult:
    source: str
    target: str
    base: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    dropped: list[str] = field(default_factory=list)
    #: (collection, document stem or None for the collection, conflict)
    conflicts: list[tuple[str, str | None, Any]] = field(default_factory=list)
    #: the target's seq of the merge's last version; None when nothing was written
    seq: int | None = None
    #: (collection, document stem, ADDED | UPDATED | DELETED) of every document written
    #: (or, for a dry run or a merge stopped by conflicts, that would be), in write order
    documents: list[tuple[str, str, str]] = field(default_factory=list)

    def note(self, change: str, collection: str, stem: str) -> None:
        """List one document written to the target, and count it."""
        self.documents.append((collection, stem, change))
        if change == ADDED:
            self.added += 1
        elif change == UPDATED:
            self.updated += 1
        else:
            self.deleted += 1

    @property
    def changes(self) -> int:
        return self.added + self.updated + self.deleted + len(self.dropped)


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass(frozen=True)
class Change:
    """One write of ``Repository.apply``: ``op`` is ``put`` (with ``doc``, and optionally
    the modification time ``mtime`` in ns), ``del`` (of ``stem``), ``mkcol`` or ``drop``
    (the collection)."""

    op: str
    collection: str
    stem: str = ""
    doc: dict[str, Any] | None = None
    mtime: int | None = None
    #: ``doc`` already went through ``documents.prepare`` (validated and normalised)
    prepared: bool = False
    #: the bytes ``doc`` was parsed from, kept with the version when they are not its
    #: canonical rendering (a pull of a bundle that kept them)
    raw: bytes | None = None
