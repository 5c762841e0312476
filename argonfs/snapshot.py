"""What a mount serves, as small typed interfaces (pure: no I/O, no pymongo, like codec).

The filesystem never sees MongoDB: the daemon hands it a ``Catalog`` (refs, branch,
bundle and label names), which resolves a ref to a ``Snapshot`` (read-only: a bundle, a
``BRANCH@SEQ`` view) or a ``BranchHead`` (a branch as it moves: a snapshot that takes writes).
store/snapshots.py implements them over MongoDB; remote/snapshots.py implements
``Catalog`` and ``Snapshot`` alone over a remote (bundles in a bucket, read-only).  Every
method blocks: the mount calls them through ``Runner.run`` in a worker thread.

A listed document names its version with ``version``, a hashable key that is the same
wherever that version is seen and whose body never changes, so bodies are cached by it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Listed(Protocol):
    """What a listing knows of a document, without its body."""

    @property
    def stem(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def version(self) -> Hashable: ...
    @property
    def mtime_ns(self) -> int: ...


class Written(Listed, Protocol):
    """A document as stored by a write."""

    @property
    def rendered(self) -> bytes: ...


@dataclass(frozen=True)
class Label:
    name: str
    bundle: str
    mtime_ns: int


class Snapshot(Protocol):
    """A state of a repository that lists collections and documents."""

    #: "bundle", "label", "seq" (a view of a branch's past) or "branch"
    kind: str
    #: the ref as the user wrote it
    ref: str
    #: when it was taken (bundles), else None
    time_ns: int | None
    #: where it stands: a frozen view's slot (a number that differs when the content
    #: does), None for a branch, which moves
    seq: int | None

    def pinned(self) -> Snapshot:
        """The same state, fixed (a branch at its current head), for one listing."""
        ...

    def collections(self) -> list[str]: ...
    def collection_exists(self, collection: str) -> bool: ...

    def entries(self, collection: str, after: str = "") -> Iterator[Listed]:
        """Live documents after ``after`` in name order, streamed (never all at once)."""
        ...

    def stat(self, collection: str, stem: str) -> Listed: ...

    def bodies(self, collection: str, entries: list[Listed]) -> list[bytes]:
        """The rendered bodies of listed documents, in one round trip, in order."""
        ...


class BranchHead(Snapshot, Protocol):
    """A snapshot that moves: its head, and writes to it."""

    #: the branch's identity (stable across renames of nothing: a key for caches)
    key: Hashable

    def head(self) -> int: ...
    def check_writable(self, seq: int) -> None: ...

    def put(
        self, collection: str, doc: dict[str, Any], *, stem: str, author: str | None, mtime: int | None, if_changed: bool = True, raw: bytes | None = None
    ) -> tuple[Written, int]:
        """Store a document (with ``if_changed``, unless it equals the current version);
        ``raw``: the bytes it was parsed from, which it then reads as.  Returns it and
        the head."""
        ...

    def delete(self, collection: str, stem: str, *, author: str | None) -> int: ...

    def rename(self, collection: str, stem: str, new_collection: str, new_stem: str, *, author: str | None) -> tuple[Written, int]: ...

    def create_collection(self, collection: str, *, author: str | None) -> int: ...
    def drop_collection(self, collection: str, *, author: str | None) -> int: ...


class Catalog(Protocol):
    """The names a mount shows at its top: branches, bundles, labels."""

    def resolve(self, ref: str) -> Snapshot | BranchHead:
        """A name in the order of ``resolve_name`` (bundle id, branch, label), or
        ``BRANCH@SEQ``/``BRANCH@TIME``; raises NotFound for an unknown ref."""
        ...

    def branch_names(self) -> list[str]: ...
    def bundles(self) -> list[tuple[str, int]]:
        """(bundle id, time in ns) of every bundle."""
        ...

    def labels(self) -> list[Label]: ...
    def label(self, name: str) -> Label: ...
    def set_label(self, name: str, bundle: str, *, author: str | None) -> None: ...
    def delete_label(self, name: str, *, author: str | None) -> None: ...
    def create_branch(self, name: str, *, author: str | None) -> None: ...
    def delete_branch(self, name: str) -> None: ...
    def record_reads(self, reads: list[dict[str, Any]]) -> None: ...

    def usage(self) -> dict[str, int]:
        """{"bytes": storage used, "objects": records}, for statfs."""
        ...


class Runner(Protocol):
    """Runs a blocking call in a worker thread (argonfs/runner.py)."""

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


__all__ = ["BranchHead", "Catalog", "Label", "Listed", "Runner", "Snapshot", "Written"]
