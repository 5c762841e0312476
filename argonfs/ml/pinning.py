"""Pinning: any ref turned into an immutable snapshot with an identity and a digest.

``pin(ref)`` is what every integration starts from.  A bundle or a label is used as it
is (a label is resolved to its bundle once, at pin time); a branch or a ``branch@SEQ``
ref is bundled first, so what a run records always names something immutable.  The
digest is a SHA-256 over ``(collection, name, content hash)`` of every listed document,
taken from listings (no bodies are fetched): the same data has the same digest whichever
bundle, branch or repository holds it.  Blocking (pymongo).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from argonfs.errors import Corrupt, NotFound

if TYPE_CHECKING:
    from argonfs.store import Document, Entry, Repository

log = logging.getLogger(__name__)

#: the version of the digest's definition; part of every digest, so a change shows
DIGEST_VERSION = "v1"
SCHEME = "argonfs"


@dataclass(frozen=True)
class Pin:
    """The identity of an immutable snapshot: what a run records and loads again.

    ``server`` is where the repository was, without credentials (None: the embedded
    default); ``ref`` and ``label`` say what was asked for, ``bundle`` is what counts.
    """

    repository: str
    server: str | None
    bundle: str
    branch: str
    seq: int
    collections: tuple[str, ...]
    #: documents in the pinned collections
    count: int
    digest: str
    ref: str
    label: str | None = None
    #: (repository object, pid that opened it): never compared, never serialised
    _opened: list[Any] = field(default_factory=list, compare=False, repr=False)

    # ------------------------------------------------------------------ identity

    def to_dict(self) -> dict[str, Any]:
        """The identity as JSON-able values (no credentials, no connection)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_opened"}
        out["collections"] = list(self.collections)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pin:
        known = {k: data[k] for k in ("repository", "server", "bundle", "branch", "seq", "count", "digest", "ref", "label") if k in data}
        return cls(collections=tuple(data["collections"]), **known)

    @property
    def url(self) -> str:
        """``argonfs://REPOSITORY/BUNDLE?collections=A,B&digest=HEX``: a reference for
        trackers that take URLs (a W&B artifact reference); ``from_url`` reads it."""
        return f"{SCHEME}://{self.repository}/{self.bundle}?collections={','.join(self.collections)}&digest={self.digest}"

    @classmethod
    def from_url(cls, url: str, *, repo: Repository | None = None) -> Pin:
        """The snapshot a ``url`` names, pinned again (its digest checked)."""
        parts = urlsplit(url)
        if parts.scheme != SCHEME or not parts.netloc or not parts.path.strip("/"):
            raise ValueError(f"not an argonfs snapshot URL: {url!r}")
        query = parse_qs(parts.query)
        collections = [c for c in query.get("collections", [""])[0].split(",") if c] or None
        repo = repo or _open(parts.netloc, None)
        snap = pin(parts.path.strip("/"), collections, repo=repo)
        expected = query.get("digest", [None])[0]
        if expected is not None and expected != snap.digest:
            raise Corrupt(f"bundle {snap.bundle} has digest {snap.digest}, the URL says {expected}")
        return snap

    # ------------------------------------------------------------------ the data

    def repo(self) -> Repository:
        """The repository holding the bundle, open in this process: the one ``pin`` was
        given (reopened with a client of its own in a forked child, such as a
        ``DataLoader`` worker); else ``ARGONFS_MONGO_URI`` if set, else the recorded
        server, else the embedded default."""
        if self._opened:
            repo, pid = self._opened
            if pid == os.getpid():
                return repo
            repo = repo.reopen()
        else:
            repo = _open(self.repository, self.server)
        self._opened[:] = [repo, os.getpid()]
        return repo

    def _check(self, collection: str) -> None:
        if collection not in self.collections:
            raise NotFound(f"collection {collection!r} is not in snapshot {self.bundle} (it has {', '.join(self.collections) or 'none'})")

    def entries(self, collection: str) -> Iterator[Entry]:
        """The listing of one pinned collection, in name order, without bodies."""
        self._check(collection)
        return self.repo().entries(self.bundle, collection)

    def documents(self, collection: str) -> Iterator[Document]:
        """The documents of one pinned collection, with bodies, in name order."""
        self._check(collection)
        return self.repo().documents(self.bundle, collection)

    def verify(self) -> Pin:
        """Recompute the digest from the bundle's listings; ``Corrupt`` if it differs
        (the bundle is not the data that was pinned, e.g. another repository's)."""
        digest, count = compute_digest(self.repo(), self.bundle, self.collections)
        if digest != self.digest or count != self.count:
            raise Corrupt(
                f"bundle {self.bundle} in {self.repository!r} has digest {digest} ({count} documents); the snapshot says {self.digest} ({self.count})"
            )
        return self

    def __getstate__(self) -> dict[str, Any]:
        # A worker process gets the identity and how to connect, never the parent's client.
        state = dict(self.__dict__)
        opened = state.pop("_opened")
        state["_uri"] = opened[0]._uri if opened else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        uri = state.pop("_uri", None)
        opened: list[Any] = []
        if uri is not None:
            from argonfs.store import Repository

            opened = [Repository.open(uri, state["repository"]), os.getpid()]
        self.__dict__.update(state, _opened=opened)


def _open(name: str, server: str | None) -> Repository:
    from argonfs.store import Repository

    return Repository.open(os.environ.get("ARGONFS_MONGO_URI") or server, name)


def compute_digest(repo: Repository, ref: str, collections: Iterable[str]) -> tuple[str, int]:
    """``(digest, number of documents)`` of the collections of an immutable ref, from
    its listings (no bodies).  Every collection contributes its name even when empty."""
    h = hashlib.sha256()
    count = 0
    for collection in sorted(collections):
        h.update(orjson.dumps(["c", collection]) + b"\n")
        for entry in repo.entries(ref, collection):
            h.update(orjson.dumps([entry.stem, entry.hash]) + b"\n")
            count += 1
    return f"sha256-{DIGEST_VERSION}:{h.hexdigest()}", count


def pin(ref: str, collections: Iterable[str] | None = None, *, repo: Repository | None = None) -> Pin:
    """Resolve ``ref`` to an immutable snapshot and return its identity.

    A bundle id or a label is used as it is; a branch or ``branch@SEQ``/``branch@TIME``
    ref is bundled first (``create_bundle``, O(1), message ``pinned by argonfs.ml``).
    ``collections`` (default: every collection of the bundle) are the ones the digest
    and the document count cover, and the ones the loaders may read.
    """
    if repo is None:
        from argonfs.store import Repository

        repo = Repository.open()
    view = repo.resolve(ref)
    if view.kind in ("bundle", "label"):
        assert view.bundle is not None
        bundle = repo.bundle(view.bundle)
    else:
        bundle = repo.create_bundle(ref, f"pinned by argonfs.ml from {ref}")
        log.info("pinned %s as bundle %s (%s@%d)", ref, bundle.id, bundle.branch, bundle.seq)
    names = tuple(sorted(set(collections))) if collections is not None else tuple(repo.collections(bundle.id))
    digest, count = compute_digest(repo, bundle.id, names)
    snap = Pin(
        repository=repo.db.name,
        server=None if repo.server.startswith("embedded") else repo.where,
        bundle=bundle.id,
        branch=bundle.branch,
        seq=bundle.seq,
        collections=names,
        count=count,
        digest=digest,
        ref=ref,
        label=ref if view.kind == "label" else None,
    )
    snap._opened[:] = [repo, os.getpid()]
    return snap
