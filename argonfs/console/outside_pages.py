"""The console's pages of what lies outside the repository's own data:

    /captures   every capture: branch, source, state, lag, last event, counters; the
                page keeps them up to date from /api/v1/captures/events (a few lines of
                inline JavaScript, an EventSource) without reloading
    /remotes    every remote, with its bundles and labels (or why they cannot be read)

What they show comes from captures.py, the same helpers the API answers with; markup is
in templates/.  Handlers are plain ``def``: FastAPI runs them in worker threads.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from argonfs.console.api import Repo
from argonfs.console.captures import captures_of, remote_bundles, remote_labels, remote_out
from argonfs.console.pages import render
from argonfs.console.statuses import RequestError, status_of
from argonfs.errors import ArgonError

router = APIRouter(include_in_schema=False)


@router.get("/captures", response_class=HTMLResponse)
def captures_page(request: Request, repo: Repo) -> HTMLResponse:
    return render("captures.html", {"repository": repo.db.name, "captures": captures_of(repo)}, request=request)


@router.get("/remotes", response_class=HTMLResponse)
def remotes_page(request: Request, repo: Repo) -> HTMLResponse:
    remotes: list[dict[str, Any]] = []
    for row in repo.list_remotes():
        shown: dict[str, Any] = {"remote": remote_out(row), "bundles": [], "labels": [], "error": None}
        try:
            shown["bundles"] = remote_bundles(repo, row["name"])
            shown["labels"] = remote_labels(repo, row["name"])
        except ArgonError as exc:  # one remote that cannot be read does not hide the others
            shown["error"] = f"{status_of(exc)[1]}: {exc}"
        except RequestError as exc:
            shown["error"] = f"{exc.error}: {exc.message}"
        remotes.append(shown)
    return render("remotes.html", {"repository": repo.db.name, "remotes": remotes}, request=request)
