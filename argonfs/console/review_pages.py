"""The console's pages for reviewing: a diff of two refs with the changed fields, a
merge (preview, conflicts side by side, apply), a ref's log with filters, bundles,
labels and a label's history, and logging in with the token.

    /diff?from=A&to=B[&collection=C]        what changed, field by field
    /merge?source=S&target=T[&strategy=]    the preview; POST /merge applies it
    /refs/{ref}/log?collection&id&author&since&until
    /bundles  /labels  /labels/{name}
    /login  (POST: the token, then a session cookie)  POST /logout

Each shows what the matching API answer holds (the same helpers make both).  Form posts
take the session cookie and the form's CSRF field (auth.py ``form_writer``).  Handlers
are plain ``def`` (worker threads), except those that read a form.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from argonfs.console import api, merges, review
from argonfs.console.auth import SESSION, form_writer, policy_of, session_value
from argonfs.console.pages import render
from argonfs.console.paging import DEFAULT_LIMIT, pinned_name, unseal
from argonfs.store import Repository

router = APIRouter(include_in_schema=False)

Text = Annotated[str | None, Query()]
FormWriter = Annotated[Repository, Depends(form_writer)]


def _blank(value: str | None) -> str | None:
    """A form field left empty is a filter not given."""
    return value.strip() or None if value is not None else None


@router.get("/diff", response_class=HTMLResponse)
def diff_page(
    request: Request,
    repo: api.Repo,
    signed: api.Signed,
    old: Annotated[str | None, Query(alias="from")] = None,
    new: Annotated[str | None, Query(alias="to")] = None,
    collection: Text = None,
    cursor: Text = None,
) -> HTMLResponse:
    old, new, collection = _blank(old), _blank(new), _blank(collection)
    values: dict[str, Any] = {"repository": repo.db.name, "old": old, "new": new, "collection": collection, "items": None, "next": None}
    if old and new:
        a, b, page, nxt = review.diff_page(repo, signed, old, new, collection, DEFAULT_LIMIT, cursor)
        values |= {"at_from": pinned_name(a), "at_to": pinned_name(b), "items": [review.change_out(ch) for ch in page], "next": nxt}
    return render("diff.html", values, request=request)


@router.get("/merge", response_class=HTMLResponse)
def merge_page(
    request: Request, repo: api.Repo, signed: api.Signed, source: Text = None, target: Text = None, strategy: Annotated[merges.Strategy, Query()] = "fail"
) -> HTMLResponse:
    source, target = _blank(source), _blank(target)
    preview = merges.preview(repo, signed, source, target, strategy) if source and target else None
    here = f"/merge?{urlencode({'source': source or '', 'target': target or '', 'strategy': strategy})}"
    values = {"repository": repo.db.name, "source": source, "target": target, "strategy": strategy, "preview": preview, "here": here}
    return render("merge.html", values, request=request)


@router.post("/merge", response_class=HTMLResponse)
async def merge_apply_page(
    request: Request, repo: FormWriter, signed: api.Signed, preview: Annotated[str, Form()], message: Annotated[str, Form()] = ""
) -> HTMLResponse:
    result = await run_in_threadpool(merges.apply, repo, signed, preview, message)
    before = unseal(signed, preview, "merge", "invalid_preview")["ts"]  # the target's head the preview saw
    return render("merged.html", {"repository": repo.db.name, "result": result, "before": before}, request=request)


@router.get("/refs/{ref}/log", response_class=HTMLResponse)
def log_page(
    request: Request,
    repo: api.Repo,
    signed: api.Signed,
    ref: str,
    collection: Text = None,
    id: Text = None,
    author: Text = None,
    since: Text = None,
    until: Text = None,
    cursor: Text = None,
) -> HTMLResponse:
    filters = {"collection": _blank(collection), "id": _blank(id), "author": _blank(author), "since": _blank(since), "until": _blank(until)}
    times = {k: _time(filters[k]) for k in ("since", "until")}
    page = review.read_log(repo, signed, ref, filters["collection"], filters["id"], filters["author"], times["since"], times["until"], DEFAULT_LIMIT, cursor)
    query = urlencode({k: v for k, v in filters.items() if v})
    values = {"repository": repo.db.name, "ref": ref, "at": page.at, "items": page.items, "scanned": page.scanned, "next": page.next, "filters": filters}
    return render("log.html", values | {"query": query + "&" if query else ""}, request=request)


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        from argonfs.errors import InvalidName

        raise InvalidName(f"{text!r} is not a time: give it as ISO 8601, e.g. 2026-12-01T09:30Z") from None


@router.get("/bundles", response_class=HTMLResponse)
def bundles_page(request: Request, repo: api.Repo, signed: api.Signed, cursor: Text = None) -> HTMLResponse:
    page = api.list_bundles(repo, signed, DEFAULT_LIMIT, cursor)
    labels: dict[str, list[str]] = {}
    for row in repo.list_labels():
        labels.setdefault(row["bundle"], []).append(row["name"])
    bundles = [b.model_copy(update={"labels": labels.get(b.id, [])}) for b in page.items]
    return render("bundles.html", {"repository": repo.db.name, "bundles": bundles, "next": page.next}, request=request)


@router.get("/labels", response_class=HTMLResponse)
def labels_page(request: Request, repo: api.Repo) -> HTMLResponse:
    return render("labels.html", {"repository": repo.db.name, "labels": api.list_labels(repo)}, request=request)


@router.get("/labels/{name}", response_class=HTMLResponse)
def label_page(request: Request, repo: api.Repo, name: str) -> HTMLResponse:
    history = api.label_history(repo, name)
    current = history[0].bundle if history and history[0].op != "delete" else None
    return render("label.html", {"repository": repo.db.name, "name": name, "current": current, "history": history}, request=request)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, repo: api.Repo, next: Text = None) -> HTMLResponse:
    return render("login.html", {"repository": repo.db.name, "next": _local(next), "wrong": False}, request=request)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/") -> Response:
    policy = policy_of(request)
    repo: Repository = request.app.state.repo
    if not secrets.compare_digest(token.strip().encode(), policy.token.secret.encode()):
        return render("login.html", {"repository": repo.db.name, "next": _local(next), "wrong": True}, 401, request=request)
    answer = RedirectResponse(_local(next), status_code=303)
    answer.set_cookie(SESSION, session_value(policy.token), httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return answer


@router.post("/logout")
async def logout(request: Request, repo: FormWriter) -> Response:
    answer = RedirectResponse("/", status_code=303)
    answer.delete_cookie(SESSION)
    return answer


def _local(target: str | None) -> str:
    """Where to go after logging in: a path of this server only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
