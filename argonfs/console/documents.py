"""/api/v1/refs/{ref}/...: collections and documents at any ref, a document's history,
and writing a document.

REF is anything ``argonfs`` accepts (a branch, ``BRANCH@SEQ``, ``BRANCH@TIME``, a bundle
id, a label), resolved by the store's one resolution order.  A document is named by its
file-name stem (``ada``, ``42``, ``65a1...e4``) or its file name (``ada.json``).  Reading
handlers are plain ``def`` (FastAPI's worker threads); the write handlers read the body
on the event loop and then hand the blocking store call to a worker thread.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from argonfs import codec
from argonfs.console.api import NOT_FOUND, UNAUTHORIZED, CursorArg, Limit, Repo, Responses, Signed, Writer
from argonfs.console.auth import caller_name
from argonfs.console.paging import DEFAULT_LIMIT, page_of, pinned_name, snapshot
from argonfs.console.schemas import CollectionsOut, DocumentOut, DocumentsPage, EntryOut, HistoryPage, Problem, VersionOut, WriteOut, iso
from argonfs.console.statuses import RequestError
from argonfs.errors import DocumentTooLarge, InvalidDocument, NotFound
from argonfs.store import Document, Entry, Repository
from argonfs.store.repo.model import LogEntry, now

router = APIRouter(tags=["documents"])

DOCS = "/refs/{ref}/collections/{collection}/documents"
WRITES: Responses = {
    **NOT_FOUND,
    **UNAUTHORIZED,
    400: {"model": Problem, "description": "not a valid document, or its _id does not match the name"},
    403: {"model": Problem, "description": "the ref is read-only (a bundle, a label, BRANCH@SEQ) or a protected branch"},
}

#: what a PUT body may hold: a document at MongoDB's limit, as Extended JSON, with room
#: for the JSON's own overhead (type wrappers, indentation)
MAX_BODY = 4 * codec.MAX_BSON_SIZE


def note_reads(request: Request, repo: Repository, ref: str, collection: str, stems: list[str]) -> None:
    """Record in the read log (when the server keeps one: ``serve --read-log``) who read
    these documents of ``ref``, as a mount started with --read-log does.  Blocking."""
    if stems and request.app.state.read_log:
        who, t = caller_name(request), now()
        repo.record_reads([{"user": who, "ref": ref, "c": collection, "k": stem + codec.SUFFIX, "t": t} for stem in stems])


def stem_of(name: str) -> str:
    """A document given as its file name (``x.json``) or its stem (``x``)."""
    stem = codec.filename_to_stem(name)
    return stem if stem is not None else name


def ejson(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as Extended JSON (relaxed), as a JSON value."""
    value: dict[str, Any] = orjson.loads(codec.render(doc))
    return value


def entry_out(e: Entry, doc: Document | None = None) -> EntryOut:
    return EntryOut(
        name=e.stem + codec.SUFFIX,
        stem=e.stem,
        size=e.size,
        seq=e.seq,
        time=iso(e.time),
        author=e.author,
        hash=e.hash,
        document=None if doc is None else ejson(doc.doc),
    )


@router.get("/refs/{ref}/collections", response_model=CollectionsOut, responses=NOT_FOUND)
def list_collections(repo: Repo, ref: str) -> CollectionsOut:
    """The collections of a ref."""
    view = repo.pin(ref)
    return CollectionsOut(ref=ref, at=pinned_name(view), collections=repo.collections(view))


@router.get(DOCS, response_model=DocumentsPage, responses=NOT_FOUND)
def list_documents(
    request: Request,
    repo: Repo,
    signed: Signed,
    ref: str,
    collection: str,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorArg = None,
    bodies: Annotated[bool, Query(description="include each document's content")] = False,
) -> DocumentsPage:
    """A page of a collection's documents in name order; every page of one walk comes
    from the snapshot its first page pinned."""
    snap = snapshot(repo, ref, cursor, signed)
    entries, more = page_of(list(islice(repo.entries(snap.view, collection, after=snap.after), limit + 1)), limit)
    docs: list[Document | None] = list(repo.bodies(collection, entries)) if bodies else [None] * len(entries)
    if bodies:
        note_reads(request, repo, ref, collection, [e.stem for e in entries])
    return DocumentsPage(
        ref=ref,
        at=pinned_name(snap.view),
        collection=collection,
        items=[entry_out(e, d) for e, d in zip(entries, docs, strict=True)],
        next=snap.next(entries[-1].stem) if more else None,
    )


@router.get(DOCS + "/{name}", response_model=DocumentOut, responses=NOT_FOUND)
def get_document(
    request: Request,
    repo: Repo,
    ref: str,
    collection: str,
    name: str,
    slot: Annotated[int | None, Query(ge=1, description="the version in this slot of the ref's branch (a history entry's slot)")] = None,
) -> DocumentOut:
    """One document as Extended JSON; with ``slot``, that one version of it."""
    stem = stem_of(name)
    d = repo.get(ref, collection, stem) if slot is None else repo.get_version(ref, collection, stem, slot)
    note_reads(request, repo, ref, collection, [d.stem])
    return DocumentOut(
        ref=ref,
        collection=collection,
        name=d.stem + codec.SUFFIX,
        stem=d.stem,
        seq=d.seq,
        size=d.size,
        hash=d.hash,
        time=iso(d.time),
        author=d.author,
        document=ejson(d.doc),
    )


@router.get(DOCS + "/{name}/history", response_model=HistoryPage, responses=NOT_FOUND)
def document_history(repo: Repo, signed: Signed, ref: str, collection: str, name: str, limit: Limit = DEFAULT_LIMIT, cursor: CursorArg = None) -> HistoryPage:
    """One document's versions, newest first: every put and delete of it the ref can
    see, in its branch and then in each ancestor from its fork point down.  (A page
    after the first skips the entries before it: its cost grows with its position.)"""
    stem = stem_of(name)
    snap = snapshot(repo, ref, cursor, signed)
    skip = _offset(snap.after)
    entries, more = page_of(list(islice(repo.log(snap.view, collection, stem), skip, skip + limit + 1)), limit)
    if not entries and not skip:
        raise NotFound(f"{ref}/{collection} has no version of {stem + codec.SUFFIX!r}")
    items = [version_out(e) for e in entries]
    return HistoryPage(ref=ref, at=pinned_name(snap.view), collection=collection, stem=stem, items=items, next=snap.next(str(skip + limit)) if more else None)


def version_out(e: LogEntry) -> VersionOut:
    return VersionOut(branch=e.branch, seq=e.seq, slot=e.slot, time=iso(e.time), author=e.author, op=e.op, size=e.size)


def _offset(after: str) -> int:
    if after == "":
        return 0
    if not after.isdigit():
        raise RequestError(400, "invalid_cursor", "the cursor is not one of a history")
    return int(after)


@router.put(
    DOCS + "/{name}",
    response_model=WriteOut,
    responses=WRITES,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def put_document(request: Request, repo: Writer, ref: str, collection: str, name: str) -> WriteOut:
    """Write the body (a JSON object, Extended JSON for BSON types) as the document's
    new version.  Its ``_id``, if it has one, must be the one the name says; without
    one it gets that id.  The author is the token's name."""
    body = await _body(request)
    return await run_in_threadpool(_put, repo, ref, collection, stem_of(name), body)


def _put(repo: Repository, ref: str, collection: str, stem: str, body: bytes) -> WriteOut:
    d = repo.put(ref, collection, codec.parse(body), stem=stem)
    return WriteOut(ref=ref, collection=collection, name=d.stem + codec.SUFFIX, stem=d.stem, seq=d.seq, author=repo.author)


@router.delete(DOCS + "/{name}", response_model=WriteOut, responses=WRITES)
def delete_document(repo: Writer, ref: str, collection: str, name: str) -> WriteOut:
    """Delete the document in this branch (other branches and bundles keep it)."""
    stem = stem_of(name)
    seq = repo.delete(ref, collection, stem)
    return WriteOut(ref=ref, collection=collection, name=stem + codec.SUFFIX, stem=stem, seq=seq, author=repo.author)


async def _body(request: Request) -> bytes:
    """The request's body, refused once it is larger than any document can be."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise DocumentTooLarge(f"a body of {int(declared)} bytes is larger than any document can be")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise DocumentTooLarge(f"a body of more than {MAX_BODY} bytes is larger than any document can be")
        chunks.append(chunk)
    if not size:
        raise InvalidDocument("the body is empty: send the document as a JSON object")
    return b"".join(chunks)
