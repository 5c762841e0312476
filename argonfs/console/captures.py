"""/api/v1: the repository's captures (their state, lag and counters, also as a live
stream of Server-Sent Events) and its remotes (their bundles and labels), as JSON.

What a capture shows is ``argonfs.capture.status``, the rows ``argonfs capture list``
prints; a remote is read with ``argonfs.remote.reading.Remote``, as ``argonfs remote ls``
reads it.  Plain ``def`` handlers run in FastAPI's worker threads; the event stream is an
async generator whose every store read goes through ``run_in_threadpool``, so nothing
blocking runs on the event loop.

A remote that cannot be reached (503 ``remote_unavailable``), holds something that is
not an argonfs remote (502 ``not_a_remote``) or a corrupt object (502 ``corrupt``) is
answered in the one error shape, like every error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from argonfs.capture import status
from argonfs.console.api import NOT_FOUND, Repo, Responses
from argonfs.console.schemas import Problem, iso
from argonfs.console.schemas_outside import CaptureOut, RemoteBundleOut, RemoteLabelOut, RemoteOut, capture_out, iso_ns
from argonfs.console.statuses import RequestError, body, status_of
from argonfs.errors import ArgonError, NotFound
from argonfs.remote.objects import open_store
from argonfs.remote.reading import Remote
from argonfs.store import Repository

log = logging.getLogger(__name__)

router = APIRouter()

#: seconds between two events of the captures' stream
EVERY = 1.0
#: the error of a remote whose URL holds no argonfs remote (nothing pushed to it yet)
NOT_A_REMOTE = "not_a_remote"

REMOTE_ERRORS: Responses = {
    **NOT_FOUND,
    502: {"model": Problem, "description": "the remote holds a corrupt object, or no argonfs remote (not_a_remote)"},
    503: {"model": Problem, "description": "the remote cannot be reached (remote_unavailable) or is of another format"},
}


# ---------------------------------------------------------------------- captures


def captures_of(repo: Repository) -> list[CaptureOut]:
    """Every capture by branch (two reads; blocking)."""
    return [capture_out(row) for row in status(repo)]


def capture_of(repo: Repository, branch: str) -> CaptureOut:
    for c in captures_of(repo):
        if c.branch == branch:
            return c
    raise NotFound(f"no capture of branch {branch!r} (see GET /api/v1/captures)")


@router.get("/captures", response_model=list[CaptureOut], tags=["captures"])
def list_captures(repo: Repo) -> list[CaptureOut]:
    """Every capture of the repository: its source, state, lag, last event time and counters."""
    return captures_of(repo)


@router.get("/captures/events", response_class=EventSourceResponse, tags=["captures"])
async def capture_events(request: Request, repo: Repo) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: at once and then every second, an event ``captures`` whose data
    is the list GET /captures answers; while the store cannot be read, an event
    ``problem`` in the one error shape instead (the stream goes on).  Ends when the
    client goes away (the next event cannot be sent) or the server is stopping."""
    sent = 0
    try:
        while not stopping(request):
            try:
                event = ServerSentEvent(event="captures", data=[c.model_dump() for c in await run_in_threadpool(captures_of, repo)])
            except ArgonError as exc:
                event = ServerSentEvent(event="problem", data=body(status_of(exc)[1], str(exc)))
            yield event
            sent += 1
            await anyio.sleep(EVERY)
    finally:
        log.debug("captures' event stream ended after %d events", sent)


def stopping(request: Request) -> bool:
    """Whether the server was asked to stop (serving.py says so): a stream that would go
    on forever ends, so that a graceful stop does not wait for it."""
    return bool(getattr(request.app.state, "stopping", False))


@router.get("/captures/{branch}", response_model=CaptureOut, responses=NOT_FOUND, tags=["captures"])
def get_capture(repo: Repo, branch: str) -> CaptureOut:
    """The capture of one branch (404 when no capture ever wrote it)."""
    return capture_of(repo, branch)


# ---------------------------------------------------------------------- remotes


def remote_out(row: dict[str, Any]) -> RemoteOut:
    return RemoteOut(name=row["name"], url=row["url"], time=iso(row["time"]), author=row["author"])


@contextmanager
def reading(repo: Repository, name: str) -> Iterator[Remote]:
    """Remote ``name`` (404 when the repository knows no such remote), read inside the
    block: a missing marker is 502 ``not_a_remote``, not a 404 of the path."""
    remote = Remote(open_store(repo.remote(name)))
    try:
        yield remote
    except NotFound as exc:
        raise RequestError(502, NOT_A_REMOTE, str(exc)) from None


def remote_bundles(repo: Repository, name: str) -> list[RemoteBundleOut]:
    """The bundles of remote ``name``: one read per bundle's descriptor (blocking)."""
    with reading(repo, name) as remote:
        out = []
        for bundle_id in remote.bundle_ids():
            d = remote.descriptor(bundle_id)
            out.append(
                RemoteBundleOut(
                    id=d.bundle,
                    time=iso_ns(d.time_ns),
                    branch=d.branch,
                    message=d.message,
                    author=d.author,
                    documents=sum(d.counts.values()),
                    collections=dict(d.counts),
                )
            )
        return sorted(out, key=lambda b: b.time, reverse=True)


def remote_labels(repo: Repository, name: str) -> list[RemoteLabelOut]:
    """The labels of remote ``name``, by name, each as its newest slot says (blocking)."""
    with reading(repo, name) as remote:
        return [RemoteLabelOut(name=s.name, bundle=s.bundle or "", time=iso_ns(s.time_ns), author=s.author, slot=s.slot) for s in remote.labels()]


@router.get("/remotes", response_model=list[RemoteOut], tags=["remotes"])
def list_remotes(repo: Repo) -> list[RemoteOut]:
    """The remotes the repository knows (``argonfs remote add``), by name; nothing is read from them."""
    return [remote_out(r) for r in repo.list_remotes()]


@router.get("/remotes/{name}/bundles", response_model=list[RemoteBundleOut], responses=REMOTE_ERRORS, tags=["remotes"])
def list_remote_bundles(repo: Repo, name: str) -> list[RemoteBundleOut]:
    """The bundles pushed to a remote, newest first."""
    return remote_bundles(repo, name)


@router.get("/remotes/{name}/labels", response_model=list[RemoteLabelOut], responses=REMOTE_ERRORS, tags=["remotes"])
def list_remote_labels(repo: Repo, name: str) -> list[RemoteLabelOut]:
    """The labels of a remote by name, and the bundle each names now."""
    return remote_labels(repo, name)
