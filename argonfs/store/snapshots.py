"""The mount's view of a repository (fs/source.py's interfaces) over MongoDB.

``MongoCatalog`` resolves refs to ``MongoSnapshot`` (bundles, labels, ``BRANCH@SEQ`` and
``BRANCH@TIME`` views) and ``MongoBranch`` (a branch head, which takes writes), each a
thin layer over ``Repository`` and its ``View``.  Blocking, like the rest of store/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from argonfs.snapshot import Label, Listed
from argonfs.store.db.mongo import errors
from argonfs.store.engine.versions import Entry, in_bulk, kept, time_ns
from argonfs.store.repo.repository import Document, Repository, View

#: a batch of at least this many listed versions of one branch is fetched by the range
#: of their names on the key index (``_bodies_by_range``) rather than by slot ids
RANGE_MIN = 32


class Stored(Entry):
    """A version as a write stored it, with its rendering (an attribute: a named
    tuple's subclass can add no field)."""

    rendered: bytes


def _stored(branch_id: Any, doc: Document) -> Stored:
    """The version a write left: its own slot, or (nothing written) the existing
    version's, which may be an ancestor's."""
    stored = Stored(doc.stem, doc.size, doc.hash, doc.seq, doc.branch_id or branch_id, doc.time, doc.author, doc.mtime)
    stored.rendered = doc.rendered
    return stored


class MongoCatalog:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._writers: dict[str, Repository] = {}

    def writer(self, author: str | None) -> Repository:
        """The repository writing as ``author`` (the calling user of a mount request)."""
        if author is None:
            return self.repo
        repo = self._writers.get(author)
        if repo is None:
            repo = self._writers[author] = self.repo.with_author(author)
        return repo

    def resolve(self, ref: str) -> MongoSnapshot:
        view = self.repo.resolve(ref)
        if view.kind == "branch":
            return MongoBranch(self, view)
        when = time_ns(self.repo.bundle(view.bundle).time) if view.bundle is not None else None
        return MongoSnapshot(self, view, when)

    def branch_names(self) -> list[str]:
        return [b.name for b in self.repo.list_branches()]

    def bundles(self) -> list[tuple[str, int]]:
        return [(b.id, time_ns(b.time)) for b in self.repo.list_bundles()]

    def labels(self) -> list[Label]:
        return [Label(row["name"], row["bundle"], time_ns(row["time"])) for row in self.repo.list_labels()]

    def label(self, name: str) -> Label:
        row = self.repo.label(name)
        return Label(name, row["bundle"], time_ns(row["time"]))

    def set_label(self, name: str, bundle: str, *, author: str | None) -> None:
        self.writer(author).set_label(name, bundle)

    def delete_label(self, name: str, *, author: str | None) -> None:
        self.writer(author).delete_label(name)

    def create_branch(self, name: str, *, author: str | None) -> None:
        self.writer(author).create_branch(name)

    def delete_branch(self, name: str) -> None:
        self.repo.delete_branch(name)

    def record_reads(self, reads: list[dict[str, Any]]) -> None:
        self.repo.record_reads(reads)

    def usage(self) -> dict[str, int]:
        return self.repo.usage()


class MongoSnapshot:
    def __init__(self, catalog: MongoCatalog, view: View, time_ns: int | None = None) -> None:
        self.catalog = catalog
        self.view = view
        self.kind = view.kind
        self.ref = view.ref
        self.time_ns = time_ns
        self.seq = view.seq

    @property
    def repo(self) -> Repository:
        return self.catalog.repo

    def pinned(self) -> MongoSnapshot:
        return MongoSnapshot(self.catalog, self.repo.pin(self.view), self.time_ns)

    def collections(self) -> list[str]:
        return self.repo.collections(self.view)

    def collection_exists(self, collection: str) -> bool:
        return self.repo.collection_exists(self.view, collection)

    def entries(self, collection: str, after: str = "") -> Iterator[Entry]:
        return self.repo.entries(self.view, collection, after=after)

    def stat(self, collection: str, stem: str) -> Entry:
        return self.repo.stat(self.view, collection, stem)

    def bodies(self, collection: str, entries: list[Listed]) -> list[bytes]:
        listed = [e for e in entries if isinstance(e, Entry)]
        found = _bodies_by_range(self.repo, collection, listed)
        missing = [e for e in listed if e.version not in found]
        if missing:
            found.update((e.version, d.rendered) for e, d in zip(missing, self.repo.bodies(collection, missing), strict=True))
        return [found[e.version] for e in listed]


class MongoBranch(MongoSnapshot):
    @property
    def key(self) -> Any:
        return self.view.branch_id

    def head(self) -> int:
        seq = self.repo.pin(self.view).seq
        assert seq is not None
        return seq

    def check_writable(self, seq: int) -> None:
        self.repo.check_writable(self.view, seq)

    def put(
        self, collection: str, doc: dict[str, Any], *, stem: str, author: str | None, mtime: int | None, if_changed: bool = True, raw: bytes | None = None
    ) -> tuple[Stored, int]:
        written = self.catalog.writer(author).put(self.view, collection, doc, stem=stem, mtime=mtime, if_changed=if_changed, raw=raw)
        # nothing written: the existing version's slot is no head of this branch
        return _stored(self.view.branch_id, written), written.seq if written.stored else self.head()

    def delete(self, collection: str, stem: str, *, author: str | None) -> int:
        return self.catalog.writer(author).delete(self.view, collection, stem)

    def rename(self, collection: str, stem: str, new_collection: str, new_stem: str, *, author: str | None) -> tuple[Stored, int]:
        written, slot = self.catalog.writer(author).rename(self.view, collection, stem, new_collection, new_stem)
        return _stored(self.view.branch_id, written), slot

    def create_collection(self, collection: str, *, author: str | None) -> int:
        return self.catalog.writer(author).create_collection(self.view, collection)

    def drop_collection(self, collection: str, *, author: str | None) -> int:
        return self.catalog.writer(author).drop_collection(self.view, collection)


def _bodies_by_range(repo: Repository, collection: str, entries: list[Entry]) -> dict[Any, bytes]:
    """Rendered bodies of listed versions, by version, for the branches that hold at
    least ``RANGE_MIN`` of them: one query per branch for the records between the
    first and the last name on the key index, kept where the slot is a wanted one.

    A listing page's neighbours are consecutive names, so the range holds little else
    (other versions of the same names); SecantusDB answers it at about 2.5 times the
    records per second of an ``$in`` of slot ids (docs/benchmarks.md, "Mount reads").
    At most twice the wanted count is read; whatever is not found (a range cut short,
    a reclaimed body) is left to ``Repository.bodies``, which says why.  Versions of a
    bulk write (an import) are not on the key index, and are left to it too."""
    groups: dict[Any, dict[int, Entry]] = {}
    for e in entries:
        groups.setdefault(e.branch_id, {})[e.seq] = e
    found: dict[Any, bytes] = {}
    for bid, wanted in groups.items():
        for seq in in_bulk(repo._versions, bid, list(wanted)):
            del wanted[seq]  # imported: not on the key index, read by slot id
        if len(wanted) < RANGE_MIN:
            continue
        stems = [e.stem for e in wanted.values()]
        query = {"b": bid, "c": collection, "k": {"$gte": min(stems), "$lte": max(stems)}}
        with errors(repo.where):
            records = list(repo._versions.find(query).limit(2 * len(wanted) + 16))
        for rec in records:
            hit = wanted.get(rec["s"])
            if hit is not None and rec["k"] == hit.stem and "d" in rec:
                found[hit.version] = Document(
                    collection, hit.stem, rec["d"], hit.seq, hit.size, hit.hash, hit.time, hit.author, hit.mtime, raw=kept(rec)
                ).rendered
    return found
