"""The console's HTML pages over a remote (console/remote.py's app), from the templates
the pages over a repository use and ``remote.html``, the remote's top page:

    /                                                the bundles (?cursor=) and the labels
    /refs/{ref}                                      the collections of a bundle or a label
    /refs/{ref}/collections/{c}                      a page of its documents (?cursor=)
    /refs/{ref}/collections/{c}/documents/{name}     a document's JSON (no history: a
                                                     bundle holds one version of each)

Handlers are plain ``def`` (worker threads), shaping what remote_api.py reads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from argonfs.console.api import Signed
from argonfs.console.pages import render, segment
from argonfs.console.paging import DEFAULT_LIMIT, Cursor
from argonfs.console.remote_api import Catalog, bundles_page, document, documents, entry_out, label_out, parsed, pinned

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def remote_page(remote: Catalog, signed: Signed, cursor: Annotated[str | None, Query()] = None) -> HTMLResponse:
    """The bundles (newest first, a page at a time) and the labels."""
    page = bundles_page(remote, signed, DEFAULT_LIMIT, cursor)
    labels = [label_out(s) for s in remote.label_slots()] if cursor is None else []
    return render(
        "remote.html",
        {"repository": f"remote {remote.url}", "bundles": page.items, "labels": labels, "next": page.next, "first": cursor is not None},
    )


@router.get("/refs/{ref}", response_class=HTMLResponse)
def collections_page(remote: Catalog, ref: str) -> HTMLResponse:
    snap = remote.resolve(ref)
    return render("collections.html", {"repository": f"remote {remote.url}", "ref": ref, "at": snap.descriptor.bundle, "collections": snap.collections()})


@router.get("/refs/{ref}/collections/{collection}", response_class=HTMLResponse)
def documents_page(remote: Catalog, signed: Signed, ref: str, collection: str, cursor: Annotated[str | None, Query()] = None) -> HTMLResponse:
    snap, after = pinned(remote, ref, cursor, signed)
    entries, more = documents(snap, collection, after, DEFAULT_LIMIT)
    at = snap.descriptor.bundle
    return render(
        "documents.html",
        {
            "repository": f"remote {remote.url}",
            "ref": ref,
            "at": at,
            "collection": collection,
            "entries": [entry_out(snap, e) for e in entries],
            "next": Cursor(ref, at, "", entries[-1].stem).encode(signed) if more else None,
            "first": cursor is not None,
        },
    )


@router.get("/refs/{ref}/collections/{collection}/documents/{name}", response_class=HTMLResponse)
def document_page(remote: Catalog, ref: str, collection: str, name: str) -> HTMLResponse:
    snap, e, body = document(remote, ref, collection, name)
    out = entry_out(snap, e)
    parsed(snap, e, body)  # a body that is not a document is Corrupt here too
    return render(
        "document.html",
        {
            "repository": f"remote {remote.url}",
            "ref": ref,
            "collection": collection,
            "name": out.name,
            "stem": e.stem,
            "slot": None,
            "doc": {"seq": out.seq, "time": out.time, "author": out.author, "size": out.size, "hash": out.hash},
            "json": body.decode("utf-8", "replace"),
            "history": [],  # a bundle holds one version of each document
            "more_history": False,
            "api_path": f"/refs/{segment(ref)}/collections/{segment(collection)}/documents/{segment(e.stem)}",
        },
    )
