"""Pushing bundles (and labels) from a repository to a remote.

A push writes bottom up: packs, then chunks, then the bundle's descriptor, each with
create-if-absent, so a reader (who enters only through descriptors and labels) never
sees a half bundle, and a push killed at any point and run again finds what it already
uploaded (one listing of ``packs/`` and ``chunks/``) and writes only the rest.  Packing
is deterministic (documents in listing order, packs cut at 8 MiB), so the re-run
produces the same objects.

Incremental: the push compares the bundle's listing (content hashes, no bodies) with a
**base** already on the remote and writes only the documents that differ, as a delta
layer over the base's manifest (remote/format.py).  The base is the bundle closest in
content, whatever its branch or repository: each descriptor carries a sketch of its
documents, and the push compares its own with those of the label's bundle, the newest
bundles and its own earlier pushes (``_choose_base``), so the first push of a feature
branch forked from a pushed bundle, or another repository's push of the same data,
writes only what differs.  Uses only the store's
public API.  Blocking.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from argonfs.errors import Corrupt, NotFound, WrongFormat
from argonfs.remote import chunks, reading
from argonfs.remote import format as f
from argonfs.store import Repository
from argonfs.store.engine.versions import PAGE, Entry, time_ns

log = logging.getLogger(__name__)

#: how many bundles of the remote a push reads looking for a base of the same branch
BASE_SEARCH = 20


@dataclass
class PushReport:
    bundle: str
    label: str | None = None
    #: the bundle was already on the remote
    existed: bool = False
    base: str | None = None
    #: the base's estimated similarity in content to the bundle (None: no base, or one
    #: chosen by branch among bundles pushed before sketches)
    similarity: float | None = None
    documents: int = 0
    #: documents whose bytes were uploaded (the rest are found in the base)
    uploaded_documents: int = 0
    objects_uploaded: int = 0
    bytes_uploaded: int = 0
    objects_skipped: int = 0
    bytes_skipped: int = 0
    label_slot: int | None = None
    uploaded: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "uploaded"}


Progress = Callable[[int], None]


class _Uploader:
    """Create-if-absent uploads that skip objects the remote already holds."""

    def __init__(self, remote: reading.Remote, report: PushReport, progress: Progress | None) -> None:
        self.store = remote.store
        self.report = report
        self.progress = progress
        self.existing = {o.key for prefix in ("packs/", "chunks/") for o in self.store.list(prefix)}

        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        """Thread-safe (packs and chunks are uploaded from worker threads)."""
        created = key not in self.existing and self.store.put_if_absent(key, data)
        with self._lock:
            if created:
                self.report.objects_uploaded += 1
                self.report.bytes_uploaded += len(data)
                self.report.uploaded.append(key)
            else:
                self.report.objects_skipped += 1
                self.report.bytes_skipped += len(data)
            self.existing.add(key)
            if self.progress is not None:
                self.progress(len(data))


class _Packer:
    """Documents into packs of about ``PACK_TARGET`` bytes, each uploaded in a worker
    thread as it fills (reading the next pack's documents overlaps the upload); at most
    two uploads are in flight, which bounds memory to about three packs."""

    def __init__(self, uploader: _Uploader, pool: ThreadPoolExecutor) -> None:
        self.uploader = uploader
        self.pool = pool
        self.uploads: list[Future[None]] = []
        self.parts: list[bytes] = []
        self.size = 0
        #: entries waiting for the hash of the pack they are in
        self.waiting: list[list[Any]] = []

    def add(self, row: list[Any], body: bytes) -> None:
        row[4] = self.size
        self.parts.append(body)
        self.size += len(body)
        self.waiting.append(row)
        if self.size >= f.PACK_TARGET:
            self.close()

    def close(self) -> None:
        if not self.parts:
            return
        data = b"".join(self.parts)
        h = f.digest(data)
        for row in self.waiting:
            row[3] = h
        self.parts, self.size, self.waiting = [], 0, []
        while len(self.uploads) >= 2:
            self.uploads.pop(0).result()
        self.uploads.append(self.pool.submit(self.uploader.put, f.pack_key(h), data))

    def finish(self) -> None:
        self.close()
        for upload in self.uploads:
            upload.result()
        self.uploads = []


def _local_sketch(repo: Repository, view: Any) -> list[int]:
    """The sketch of a bundle's documents (``format.sketch``), from its listing (no bodies)."""
    value = f.sketch_value
    return f.sketch(value(c, e.stem, e.hash) for c in repo.collections(view) for e in repo.entries(view, c))


def _candidates(remote: reading.Remote, repo: Repository, label: str | None, bundle_id: str) -> tuple[list[f.Descriptor], str | None]:
    """The remote bundles a push considers as its base, in the order of the old rule's
    preference: the label's bundle, then the ``BASE_SEARCH`` newest bundles (any branch,
    any repository), then up to ``BASE_SEARCH`` older ones that this repository has too
    (its own earlier pushes, where a branch it forked from is likely to be).  A descriptor
    that cannot be read is passed over (and logged once): it is not this push's to read.
    Also the bundle the label names on the remote, if any."""
    ids = sorted((b for b in remote.bundle_ids() if b != bundle_id), reverse=True)
    wanted: list[str] = []
    labelled = None
    if label is not None:
        with contextlib.suppress(NotFound):
            labelled = remote.label(label).bundle
    if labelled is not None and labelled != bundle_id:
        wanted.append(labelled)
    wanted += ids[:BASE_SEARCH]
    if len(ids) > BASE_SEARCH:
        mine = {b.id for b in repo.list_bundles()}
        wanted += [b for b in ids[BASE_SEARCH:] if b in mine][:BASE_SEARCH]
    found = []
    for other in dict.fromkeys(wanted):
        try:
            found.append(remote.descriptor(other))
        except (Corrupt, NotFound, WrongFormat) as exc:
            remote.warn_once(f"bundle {other}", f"not considered as a push's base ({exc})")
    return found, labelled


def _choose_base(
    remote: reading.Remote, repo: Repository, view: Any, label: str | None, branch: str, bundle_id: str
) -> tuple[f.Descriptor | None, float | None]:
    """The base a push writes its delta over, and its estimated similarity (None when
    chosen by the old rule): of the candidates with a sketch, the one closest in content
    to the bundle, whatever its branch or repository (the first of equals, in the order
    of ``_candidates``); else, among bundles pushed before sketches, the label's bundle or
    the newest one of the same branch."""
    candidates, labelled = _candidates(remote, repo, label, bundle_id)
    sketched = [d for d in candidates if d.sketch is not None]
    if sketched:
        mine = _local_sketch(repo, view)
        scores = [f.similarity(mine, d.sketch or []) for d in sketched]
        best = max(range(len(sketched)), key=lambda i: scores[i])
        if scores[best] > 0:
            return sketched[best], scores[best]
    for desc in candidates:
        if desc.sketch is None and (desc.bundle == labelled or desc.branch == branch):
            return desc, None
    return None, None


def merge_join(local: Iterator[Entry], base: Iterator[reading.RemoteEntry]) -> Iterator[tuple[Entry | None, reading.RemoteEntry | None]]:
    """Merge-join two listings in name order: (local, base) pairs, either side None."""
    end = object()
    a: Any = next(local, end)
    b: Any = next(base, end)
    while a is not end or b is not end:
        if b is end or (a is not end and a.stem < b.stem):
            yield a, None
            a = next(local, end)
        elif a is end or b.stem < a.stem:
            yield None, b
            b = next(base, end)
        else:
            yield a, b
            a, b = next(local, end), next(base, end)


def _pack(packer: _Packer, collection: str, row: list[Any], body: bytes) -> None:
    if f.digest(body) != row[2]:
        raise Corrupt(f"{collection}/{row[0]}.json renders to bytes that do not match its stored hash")
    packer.add(row, body)


def _entry(row: list[Any]) -> reading.RemoteEntry:
    stem, size, h, pack, offset, mtime = row
    return reading.RemoteEntry(stem, size, h, mtime, pack, offset)


def push_bundle(repo: Repository, remote: reading.Remote, bundle_id: str, *, label: str | None = None, progress: Progress | None = None) -> PushReport:
    """Upload a bundle of ``repo`` (incrementally over a base), then, with ``label``,
    append the label's new value to its history on the remote."""
    report = PushReport(bundle_id, label)
    remote.check_format(create=True)
    bundle = repo.bundle(bundle_id)
    if remote.has_bundle(bundle_id):
        report.existed = True
    else:
        _upload(repo, remote, bundle, label, report, progress)
    if label is not None:
        try:
            current = remote.label(label).bundle
        except NotFound:
            current = None
        if current != bundle_id:
            report.label_slot = remote.set_label(label, bundle_id, author=repo.author, time_ns=time.time_ns())
    return report


def _upload(repo: Repository, remote: reading.Remote, bundle: Any, label: str | None, report: PushReport, progress: Progress | None) -> None:
    base, report.similarity = _choose_base(remote, repo, repo.pin(bundle.id), label, bundle.branch, bundle.id)
    report.base = base.bundle if base is not None else None
    uploader = _Uploader(remote, report, progress)
    with ThreadPoolExecutor(8) as pool:
        packer = _Packer(uploader, pool)
        try:
            collections, counts, sketch = _write(repo, remote, bundle, base, report, uploader, packer, pool)
        finally:
            for upload in packer.uploads:
                upload.cancel()
    desc = f.Descriptor(
        bundle.id,
        time_ns(bundle.time),
        bundle.branch,
        bundle.message,
        bundle.author,
        collections,
        counts,
        {"seq": bundle.seq, "pushed_ns": time.time_ns(), "sketch": f.encode_sketch(sketch), **({"base": report.base} if report.base else {})},
    )
    data = desc.to_bytes()
    if remote.store.put_if_absent(f.bundle_key(bundle.id), data):
        report.objects_uploaded += 1
        report.bytes_uploaded += len(data)
    log.info("pushed bundle %s to %s: %d objects, %d bytes", bundle.id, remote.url, report.objects_uploaded, report.bytes_uploaded)


def _write(
    repo: Repository,
    remote: reading.Remote,
    bundle: Any,
    base: f.Descriptor | None,
    report: PushReport,
    uploader: _Uploader,
    packer: _Packer,
    pool: ThreadPoolExecutor,
) -> tuple[dict[str, list[list[f.ChunkRef]]], dict[str, int], list[int]]:
    """Upload the packs and chunks of a bundle; return its collections' layers, numbers
    of documents and content sketch."""
    view = repo.pin(bundle.id)
    # per collection: full rows and delta rows (tombstones are plain names); rows are
    # [stem, size, hash, pack, offset, mtime] lists, the pack filled in when it closes
    full: dict[str, list[list[Any]]] = {}
    delta: dict[str, list[list[Any] | str]] = {}
    for collection in repo.collections(view):
        rows = full[collection] = []
        changes = delta[collection] = []
        if base is None or collection not in base.collections:
            for doc in repo.documents(view, collection):  # every body: one scan
                row = [doc.stem, doc.size, doc.hash, None, None, doc.mtime_ns]
                rows.append(row)
                _pack(packer, collection, row, doc.rendered)
                report.documents += 1
                report.uploaded_documents += 1
            continue
        need: list[tuple[Entry, list[Any]]] = []

        def fetch(need: list[tuple[Entry, list[Any]]] = need, collection: str = collection) -> None:
            for (_entry, row), doc in zip(need, repo.bodies(collection, [e for e, _ in need]), strict=True):
                _pack(packer, collection, row, doc.rendered)
                report.uploaded_documents += 1
            need.clear()

        for local, old in merge_join(repo.entries(view, collection), remote.entries(base, collection)):
            if local is None:
                assert old is not None
                changes.append(old.stem)
                continue
            report.documents += 1
            if old is not None and old.hash == local.hash:
                row = [local.stem, local.size, local.hash, old.pack, old.offset, local.mtime_ns]
                report.bytes_skipped += local.size
                rows.append(row)
                if old.mtime_ns != local.mtime_ns:
                    changes.append(row)
                continue
            row = [local.stem, local.size, local.hash, None, None, local.mtime_ns]
            rows.append(row)
            changes.append(row)
            need.append((local, row))
            if len(need) >= PAGE:
                fetch()
        fetch()
    packer.finish()

    layers: dict[str, list[list[list[Any] | str]]] = {}
    for collection, rows in full.items():
        old_layers = base.collections.get(collection) if base is not None else None
        changes = delta[collection]
        if old_layers is not None and not changes:
            layers[collection] = []  # the base's layers as they are
        elif old_layers is not None and len(old_layers) < f.MAX_LAYERS and len(changes) <= max(f.CHUNK_MIN, len(rows) // 4):
            layers[collection] = [changes]
        else:
            layers[collection] = [list(rows)]
            old_layers = None
        if old_layers is None and base is not None:
            base = _without(base, collection)

    pending: list[tuple[str, bytes]] = []
    collections: dict[str, list[list[f.ChunkRef]]] = {}
    for collection, new_layers in layers.items():
        kept = list(base.collections.get(collection, [])) if base is not None else []
        for layer in new_layers:
            refs = []
            for chunk in chunks.split_chunks(r if isinstance(r, str) else _entry(r) for r in layer):
                data = chunks.encode_chunk(collection, chunk)
                h = f.digest(data)
                pending.append((f.chunk_key(h), data))
                stems = [e if isinstance(e, str) else e.stem for e in chunk]
                refs.append(f.ChunkRef(h, stems[0], stems[-1], len(chunk)))
            kept.append(refs)
        collections[collection] = kept
    list(pool.map(lambda kv: uploader.put(*kv), pending))
    _check_present(remote, [key for key, _ in pending] + [f.pack_key(r[3]) for rows in full.values() for r in rows])
    sketch = f.sketch(f.sketch_value(c, r[0], r[2]) for c, rows in full.items() for r in rows)
    return collections, {c: len(rows) for c, rows in full.items()}, sketch


def _without(desc: f.Descriptor, collection: str) -> f.Descriptor:
    """The base with one collection's layers forgotten (it is written out in full)."""
    collections = {c: v for c, v in desc.collections.items() if c != collection}
    return f.Descriptor(desc.bundle, desc.time_ns, desc.branch, desc.message, desc.author, collections, desc.counts, desc.extra)


def _check_present(remote: reading.Remote, keys: list[str]) -> None:
    """Before the descriptor makes them reachable, make sure every object the bundle
    uses is there: one it reused may have been an orphan that ``remote gc`` removed."""
    present = {o.key for prefix in ("packs/", "chunks/") for o in remote.store.list(prefix)}
    missing = sorted(set(keys) - present)
    if missing:
        raise Corrupt(f"remote {remote.url}: {len(missing)} objects this push relies on vanished (e.g. {missing[0]}; a concurrent 'remote gc'?); push again")
