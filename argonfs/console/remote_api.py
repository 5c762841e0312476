"""/api/v1 over a remote, with no MongoDB (console/remote.py's app; docs/console.md,
"Serving a remote"): what the pages of remote_pages.py show too.

The same paths and JSON shapes as api.py and documents.py over a repository, for what a
remote holds: its bundles, its labels and their history, and the collections and
documents of a bundle, where REF is a bundle id or a label of the remote.  It has no
branches (``GET /branches`` is an empty list, one branch is 404) and no history of a
document (a bundle holds one version of each: 404).  A remote's manifest keeps a
document's name, size, hash and time, not its seq or author: those are the bundle's.

What the remote says is read through remote/snapshots.py's ``RemoteCatalog`` and
remote/reading.py's ``Remote``: every object checked against its hash and bounded, so an
untrusted or corrupt remote is ``Corrupt`` (502) through app.py's one seam, never a
traceback; a bundle whose descriptor cannot be read is left out of the listing (and
logged once).  Handlers are plain ``def``: FastAPI runs them in worker threads, so every
blocking read of the object store happens off the event loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request

from argonfs import codec
from argonfs.console.api import BUNDLES, NOT_FOUND, CursorArg, Limit, Signed
from argonfs.console.documents import stem_of
from argonfs.console.paging import DEFAULT_LIMIT, Cursor, Signer, page_of
from argonfs.console.schemas import (
    BranchOut,
    BundleOut,
    BundlesPage,
    CollectionsOut,
    DocumentOut,
    DocumentsPage,
    EntryOut,
    LabelChange,
    LabelOut,
    iso,
)
from argonfs.errors import Corrupt, NotFound, WrongFormat
from argonfs.naming import check_label_name, is_bundle_id
from argonfs.remote.chunks import RemoteEntry
from argonfs.remote.format import Descriptor, LabelSlot, is_int
from argonfs.remote.snapshots import RemoteCatalog, RemoteSnapshot

router = APIRouter()

EPOCH = datetime(1970, 1, 1)


async def catalog(request: Request) -> RemoteCatalog:
    """FastAPI dependency: the remote the server was started on."""
    found: RemoteCatalog = request.app.state.catalog
    return found


Catalog = Annotated[RemoteCatalog, Depends(catalog)]


# ---------------------------------------------------------------------- shaping


def when(time_ns: int) -> str:
    """A remote's time (ns since the epoch, checked to be an int64) as the API's ISO 8601."""
    return iso(EPOCH + timedelta(microseconds=time_ns // 1000))


def bundle_seq(desc: Descriptor) -> int:
    """The seq of the branch the bundle froze, as its push recorded it (0 if none)."""
    seq = desc.extra.get("seq")
    return seq if isinstance(seq, int) and is_int(seq) else 0


def bundle_out(desc: Descriptor, labels: list[str] | None = None) -> BundleOut:
    return BundleOut(
        id=desc.bundle, branch=desc.branch, seq=bundle_seq(desc), message=desc.message, author=desc.author, time=when(desc.time_ns), labels=labels or []
    )


def label_out(slot: LabelSlot) -> LabelOut:
    assert slot.bundle is not None  # a label's current slot sets it
    return LabelOut(name=slot.name, bundle=slot.bundle, time=when(slot.time_ns), author=slot.author)


def entry_out(snap: RemoteSnapshot, e: RemoteEntry, body: bytes | None = None) -> EntryOut:
    desc = snap.descriptor
    document = None if body is None else parsed(snap, e, body)
    return EntryOut(
        name=e.stem + codec.SUFFIX,
        stem=e.stem,
        size=e.size,
        seq=bundle_seq(desc),
        time=when(e.mtime_ns),
        author=desc.author,
        hash=e.hash,
        document=document,
    )


def parsed(snap: RemoteSnapshot, e: RemoteEntry, body: bytes) -> dict[str, Any]:
    """A document's bytes (already checked against its hash) as a JSON object."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise Corrupt(f"remote {snap.catalog.url}: {snap.descriptor.bundle}/{e.stem}.json is not a JSON document")
    return value


# ---------------------------------------------------------------------- reading (blocking)


def descriptor(remote: RemoteCatalog, bundle_id: str) -> Descriptor:
    if not is_bundle_id(bundle_id):
        raise NotFound(f"remote {remote.url} has no bundle {bundle_id[:100]!r} (not a bundle id)")
    return remote.remote.descriptor(bundle_id)


def bundles_page(remote: RemoteCatalog, signer: Signer, limit: int, cursor: str | None) -> BundlesPage:
    """Bundles newest first (bundle ids sort by creation time), after the cursor's one;
    only the page's descriptors are read, in parallel."""
    before = Cursor.decode(cursor, BUNDLES, signer).after if cursor is not None else None
    ids = sorted((b for b in remote.remote.bundle_ids() if before is None or b < before), reverse=True)
    ids, more = page_of(ids[: limit + 1], limit)

    def read(bundle_id: str) -> Descriptor | None:
        try:
            return remote.remote.descriptor(bundle_id)
        except NotFound:
            return None  # gone since it was listed
        except (Corrupt, WrongFormat) as exc:
            remote.remote.warn_once(f"bundle {bundle_id}", f"left out of the bundles: {exc}")
            return None

    items = [bundle_out(d) for d in remote.pool.map(read, ids) if d is not None]
    return BundlesPage(items=items, next=Cursor(BUNDLES, "", "", ids[-1]).encode(signer) if more else None)


def label_slot(remote: RemoteCatalog, name: str) -> LabelSlot:
    """A label's newest slot; its name is checked first, so it never names another key."""
    return remote.label_slot(check_label_name(name))


def pinned(remote: RemoteCatalog, ref: str, cursor: str | None, signer: Signer) -> tuple[RemoteSnapshot, str]:
    """The bundle a first page resolves ``ref`` to, or the one its cursor pinned, and the
    position after which the page starts (a label moved meanwhile: still the same walk)."""
    if cursor is None:
        return remote.resolve(ref), ""
    c = Cursor.decode(cursor, ref, signer)
    return remote.resolve(c.at), c.after


def documents(snap: RemoteSnapshot, collection: str, after: str, limit: int) -> tuple[list[RemoteEntry], bool]:
    """A page of a collection's documents in name order: the chunks holding it, no more."""
    if not snap.collection_exists(collection):
        raise NotFound(f"no collection {collection!r} in bundle {snap.descriptor.bundle}")
    return page_of(list(islice(snap.remote.entries(snap.descriptor, collection, after, shown=True), limit + 1)), limit)


def document(remote: RemoteCatalog, ref: str, collection: str, name: str) -> tuple[RemoteSnapshot, RemoteEntry, bytes]:
    snap = remote.resolve(ref)
    e = snap.stat(collection, stem_of(name))
    return snap, e, snap.bodies(collection, [e])[0]


def no_branches(remote: RemoteCatalog) -> NotFound:
    return NotFound(f"remote {remote.url} has no branches: it holds bundles and labels only")


# ---------------------------------------------------------------------- /api/v1


@router.get("/branches", response_model=list[BranchOut], tags=["branches"])
def list_branches() -> list[BranchOut]:
    """A remote has no branches: always empty."""
    return []


@router.get("/branches/{name}", response_model=BranchOut, responses=NOT_FOUND, tags=["branches"])
def get_branch(remote: Catalog, name: str) -> BranchOut:
    raise no_branches(remote)


@router.get("/bundles", response_model=BundlesPage, tags=["bundles"])
def list_bundles(remote: Catalog, signed: Signed, limit: Limit = DEFAULT_LIMIT, cursor: CursorArg = None) -> BundlesPage:
    """The remote's bundles newest first, a page at a time."""
    return bundles_page(remote, signed, limit, cursor)


@router.get("/bundles/{bundle_id}", response_model=BundleOut, responses=NOT_FOUND, tags=["bundles"])
def get_bundle(remote: Catalog, bundle_id: str) -> BundleOut:
    """One bundle and the labels of the remote that point at it."""
    desc = descriptor(remote, bundle_id)
    return bundle_out(desc, [s.name for s in remote.label_slots() if s.bundle == desc.bundle])


@router.get("/labels", response_model=list[LabelOut], tags=["labels"])
def list_labels(remote: Catalog) -> list[LabelOut]:
    """Every label of the remote by name, the bundle it names now, who set it and when."""
    return [label_out(s) for s in remote.label_slots()]


@router.get("/labels/{name}", response_model=LabelOut, responses=NOT_FOUND, tags=["labels"])
def get_label(remote: Catalog, name: str) -> LabelOut:
    return label_out(label_slot(remote, name))


@router.get("/labels/{name}/history", response_model=list[LabelChange], responses=NOT_FOUND, tags=["labels"])
def label_history(remote: Catalog, name: str) -> list[LabelChange]:
    """Every change of the label on the remote, newest first (its slots, kept after it
    is deleted)."""
    slots = remote.remote.label_history(check_label_name(name))
    return [LabelChange(name=s.name, op=s.op, bundle=s.bundle, time=when(s.time_ns), author=s.author) for s in slots]


DOCS = "/refs/{ref}/collections/{collection}/documents"


@router.get("/refs/{ref}/collections", response_model=CollectionsOut, responses=NOT_FOUND, tags=["documents"])
def list_collections(remote: Catalog, ref: str) -> CollectionsOut:
    """The collections of a bundle (or of the bundle a label names)."""
    snap = remote.resolve(ref)
    return CollectionsOut(ref=ref, at=snap.descriptor.bundle, collections=snap.collections())


@router.get(DOCS, response_model=DocumentsPage, responses=NOT_FOUND, tags=["documents"])
def list_documents(
    remote: Catalog,
    signed: Signed,
    ref: str,
    collection: str,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorArg = None,
    bodies: Annotated[bool, Query(description="include each document's content")] = False,
) -> DocumentsPage:
    """A page of a collection's documents in name order; every page of one walk comes
    from the bundle its first page resolved."""
    snap, after = pinned(remote, ref, cursor, signed)
    entries, more = documents(snap, collection, after, limit)
    found: list[bytes | None] = list(snap.bodies(collection, list(entries))) if bodies and entries else [None] * len(entries)
    at = snap.descriptor.bundle
    return DocumentsPage(
        ref=ref,
        at=at,
        collection=collection,
        items=[entry_out(snap, e, b) for e, b in zip(entries, found, strict=True)],
        next=Cursor(ref, at, "", entries[-1].stem).encode(signed) if more else None,
    )


@router.get(DOCS + "/{name}", response_model=DocumentOut, responses=NOT_FOUND, tags=["documents"])
def get_document(
    remote: Catalog,
    ref: str,
    collection: str,
    name: str,
    slot: Annotated[int | None, Query(ge=1, description="refused: a remote keeps one version of each document per bundle")] = None,
) -> DocumentOut:
    """One document of a bundle as Extended JSON."""
    if slot is not None:
        raise NotFound(f"remote {remote.url} keeps no versions by slot: a bundle holds one version of each document")
    snap, e, body = document(remote, ref, collection, name)
    out = entry_out(snap, e, body)
    assert out.document is not None
    return DocumentOut(
        ref=ref,
        collection=collection,
        name=out.name,
        stem=out.stem,
        seq=out.seq,
        size=out.size,
        hash=out.hash,
        time=out.time,
        author=out.author,
        document=out.document,
    )


@router.get(DOCS + "/{name}/history", responses=NOT_FOUND, tags=["documents"])
def document_history(remote: Catalog, ref: str, collection: str, name: str) -> None:
    """Not on a remote: a bundle holds one version of each document (404)."""
    raise NotFound(f"remote {remote.url} keeps no history of documents: a bundle holds one version of each (GET the document)")
