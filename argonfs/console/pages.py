"""The console's HTML pages, rendered on the server from templates/ (markup only; what
they show is worked out here, from the same handlers' helpers the API uses).

    /                                                   branches: head, last change, by whom
    /refs/{ref}                                         the collections of a ref
    /refs/{ref}/collections/{c}                         a page of its documents (?cursor=)
    /refs/{ref}/collections/{c}/documents/{name}        a document's JSON and its history
                                                        (?slot=N: that version)

Handlers are plain ``def``: FastAPI runs them in worker threads, as the API's.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from argonfs import codec
from argonfs.console.api import Repo, Signed, branch_out
from argonfs.console.auth import SESSION, csrf_value, policy_of
from argonfs.console.documents import entry_out, note_reads, stem_of, version_out
from argonfs.console.paging import DEFAULT_LIMIT, page_of, pinned_name, snapshot
from argonfs.console.schemas import iso
from argonfs.store import Repository

router = APIRouter(include_in_schema=False)

#: versions of a document shown on its page (the API pages through the rest)
HISTORY = 50


def segment(value: object) -> str:
    """A name as one path segment of a URL: percent-encoded, except ``@`` and ``:``,
    which a segment may hold (so ``main@42`` reads as itself in the address bar)."""
    return quote(str(value), safe="@:")


def shown_json(value: object) -> str:
    """A JSON value as text for a page (escaped there like any text, unlike ``tojson``)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if isinstance(value, dict | list) else 0).decode()


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["seg"] = segment
    env.filters["json"] = shown_json
    return env


def render(template: str, values: dict[str, Any], status: int = 200, request: Request | None = None) -> HTMLResponse:
    """A page; with ``request``, its header shows who is logged in (and its forms get
    the CSRF field)."""
    who: dict[str, Any] = {"user": None, "csrf": ""}
    if request is not None:
        policy = policy_of(request)
        who["user"] = policy.caller(request.headers.get("authorization")) or policy.session(request.cookies.get(SESSION))
        if who["user"] is not None:
            who["csrf"] = csrf_value(policy.token)
    return HTMLResponse(_templates().get_template(template).render(**who, **values), status_code=status)


@router.get("/", response_class=HTMLResponse)
def branches_page(request: Request, repo: Repo) -> HTMLResponse:
    rows = [branch_out(repo, b) for b in repo.list_branches(protection=True)]
    return render("branches.html", {"repository": repo.db.name, "branches": rows}, request=request)


@router.get("/refs/{ref}", response_class=HTMLResponse)
def collections_page(request: Request, repo: Repo, ref: str) -> HTMLResponse:
    view = repo.pin(ref)
    values = {
        "repository": repo.db.name,
        "ref": ref,
        "at": pinned_name(view),
        "collections": repo.collections(view),
        "parent": view.kind == "branch" and _parent(repo, ref),
    }
    return render("collections.html", values, request=request)


def _parent(repo: Repository, branch: str) -> str | None:
    """Where a branch forked (``PARENT@SEQ``), for a link to its diff; None for a root."""
    b = repo.branch(branch)
    return f"{b.parent_name}@{b.fork_seq}" if b.parent_name else None


@router.get("/refs/{ref}/collections/{collection}", response_class=HTMLResponse)
def documents_page(request: Request, repo: Repo, signed: Signed, ref: str, collection: str, cursor: Annotated[str | None, Query()] = None) -> HTMLResponse:
    snap = snapshot(repo, ref, cursor, signed)
    entries, more = page_of(list(islice(repo.entries(snap.view, collection, after=snap.after), DEFAULT_LIMIT + 1)), DEFAULT_LIMIT)
    return render(
        "documents.html",
        {
            "repository": repo.db.name,
            "ref": ref,
            "at": pinned_name(snap.view),
            "collection": collection,
            "entries": [entry_out(e) for e in entries],
            "next": snap.next(entries[-1].stem) if more else None,
            "first": cursor is not None,
        },
        request=request,
    )


@router.get("/refs/{ref}/collections/{collection}/documents/{name}", response_class=HTMLResponse)
def document_page(request: Request, repo: Repo, ref: str, collection: str, name: str, slot: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    stem = stem_of(name)
    view = repo.pin(ref)
    doc = repo.get(view, collection, stem) if slot is None else repo.get_version(view, collection, stem, slot)
    note_reads(request, repo, ref, collection, [stem])
    history, more = page_of(list(islice(repo.log(view, collection, stem), HISTORY + 1)), HISTORY)
    versions = [version_out(e) for e in history]
    return render(
        "document.html",
        {
            "repository": repo.db.name,
            "ref": ref,
            "collection": collection,
            "name": stem + codec.SUFFIX,
            "stem": stem,
            "slot": slot,
            "doc": {"seq": doc.seq, "time": iso(doc.time), "author": doc.author, "size": doc.size, "hash": doc.hash},
            "json": doc.rendered.decode("utf-8", "replace"),
            "history": versions,
            "more_history": more,
            "api_path": f"/refs/{segment(ref)}/collections/{segment(collection)}/documents/{segment(stem)}",
        },
        request=request,
    )


def error_page(status: int, problem: dict[str, Any], repository: str) -> HTMLResponse:
    """An error as a page (the API answers the same error as JSON)."""
    return render("error.html", {"repository": repository, "status": status, "problem": problem}, status)
