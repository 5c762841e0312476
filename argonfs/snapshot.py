"""What a mount serves, as small typed interfaces (pure: no I/O, no pymongo, like codec).

The filesystem never sees MongoDB: the daemon hands it a ``Catalog`` (refs, branch,
bundle and label names), which resolves a ref to a ``Snapshot`` (read-only: a bundle, a
``BRANCH@SEQ`` view) or a ``Branch`` (a snapshot that moves, and takes writes).
store/snapshots.py implements them over MongoDB; remote/snapshots.py implements
``Catalog`` and ``Snapshot`` alone over a remote (bundles in a bucket, read-only).  Every
method blocks: the mount calls them through ``Runner.run`` in a worker thread.

A listed document names its version with ``version``, a hashable key that is the same
wherever that version is seen and whose body never changes, so bodies are cached by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from argonfs.errors import InvalidName

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


class Branch(Snapshot, Protocol):
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

    def resolve(self, ref: str) -> Snapshot | Branch:
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


__all__ = [
    "Branch",
    "Catalog",
    "Label",
    "Listed",
    "Runner",
    "Snapshot",
    "Written",
    "check_branch_name",
    "check_bundle_id",
    "check_collection_name",
    "check_label_name",
    "is_bundle_id",
    "resolve_name",
]


#: a bundle id's shape (model.new_bundle_id): 14 lowercase Crockford base32 characters
_BUNDLE_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{14}")


def is_bundle_id(name: str) -> bool:
    """Whether a name has a bundle id's shape (14 lowercase Crockford base32 characters).
    Only bundles have such names: branches and labels are refused them."""
    return _BUNDLE_ID.fullmatch(name) is not None


# The rules for names (the store refuses others; a remote mount skips them): pure, so the
# daemon of a remote mount checks names without importing the store (and pymongo).

MAX_NAME_BYTES = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_common(kind: str, name: str) -> None:
    if not name:
        raise InvalidName(f"{kind} name must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"{kind} name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    if "/" in name or _CONTROL.search(name):
        raise InvalidName(f"{kind} name {name!r} must not contain '/' or control characters")
    if name.startswith(".") or name.startswith("~"):
        raise InvalidName(f"{kind} name {name!r} must not start with '.' or '~'")


def check_bundle_id(bundle_id: str) -> str:
    if not is_bundle_id(bundle_id):
        raise InvalidName(f"{bundle_id[:40]!r} is not a bundle id (14 lowercase Crockford base32 characters)")
    return bundle_id


def _check_not_bundle_id(kind: str, name: str) -> None:
    if is_bundle_id(name):
        raise InvalidName(f"{kind} name {name!r} has the shape of a bundle id (14 lowercase Crockford base32 characters), which only bundles may have")


def check_branch_name(name: str) -> str:
    """Branch names: no '/', no '@', not empty, at most 100 bytes, no leading '.', not
    of a bundle id's shape."""
    _check_common("branch", name)
    if "@" in name:
        raise InvalidName(f"branch name {name!r} must not contain '@' (it introduces a time-travel ref)")
    _check_not_bundle_id("branch", name)
    return name


def check_label_name(name: str) -> str:
    _check_common("label", name)
    if "@" in name:
        raise InvalidName(f"label name {name!r} must not contain '@'")
    _check_not_bundle_id("label", name)
    return name


def check_collection_name(name: str) -> str:
    """MongoDB's rules (no '$', no NUL, not system.*) plus the filesystem's."""
    _check_common("collection", name)
    if "$" in name or name.startswith("system."):
        raise InvalidName(f"collection name {name!r} must not contain '$' or start with 'system.'")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidName(f"collection name {name!r} is too long")
    return name


def resolve_name(
    name: str,
    *,
    bundle: Callable[[str], T | None],
    branch: Callable[[str], T | None],
    label: Callable[[str], T | None],
) -> T | None:
    """The one order in which a plain name (no ``@``) resolves, first match wins, in the
    store, the mount, the API, the loaders and a remote (which has no branches):

    1. a bundle id, so that an id always means its bundle (asked only of a name of a
       bundle id's shape);
    2. a branch (a pull of label L writes branch L: L names the writable branch);
    3. a label (its current bundle).

    Branch and label names cannot have a bundle id's shape (``check_branch_name``,
    ``check_label_name``), so only a branch made before that rule can share a name with
    a bundle, and the bundle wins.  Each lookup returns None for "no such name"."""
    for lookup in (bundle, branch, label) if is_bundle_id(name) else (branch, label):
        found = lookup(name)
        if found is not None:
            return found
    return None
