"""What the API answers about what lies outside the repository's own data: the captures
that feed branches from MongoDB databases, and the remotes bundles are pushed to.  The
same conventions as schemas.py (UTC ISO 8601 times with a ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from argonfs.console.schemas import iso


def iso_ns(ns: int) -> str:
    """A remote's time (nanoseconds since the epoch) as ISO 8601 with a Z."""
    return iso(datetime.fromtimestamp(ns / 1e9, UTC))


def maybe_iso(t: datetime | None) -> str | None:
    return None if t is None else iso(t)


class CaptureOut(BaseModel):
    """One captured branch, as ``argonfs capture list`` shows it (docs/capture.md)."""

    branch: str
    source: str = Field(description="hosts and database (and collection) captured; never credentials")
    state: str = Field(
        description="copying, following, source-down (running); stopped, failed, dropped, invalidated, history-lost; "
        "'not running (last: STATE)' when its process is gone; 'branch deleted (a new capture starts over)'"
    )
    running: bool = Field(description="whether a capture process holds the branch's lease now")
    event_time: str | None = Field(description="the source's time of the newest event applied")
    applied: str | None = Field(description="when the last batch was committed")
    lag_s: float | None = Field(description="the last batch's lag: from its oldest event to its commit (kept while the source is idle)")
    events: int = Field(description="events applied since the capture's first copy")
    batches: int = Field(description="batches committed (the first copy counts as one)")
    slot: int | None = Field(description="the branch's slot of the last commit")
    started: str | None = Field(description="when the current (or last) run started")
    heartbeat: str | None = Field(description="the newest heartbeat of the capture's lease")
    message: str = Field(description="what a stopped capture said (what to do next); empty while it runs")
    pid: int | None = Field(description="the capture's process id while it holds the lease")


def capture_out(row: dict[str, Any]) -> CaptureOut:
    """A row of ``argonfs.capture.status`` as the API answers it."""
    return CaptureOut(
        branch=row["branch"],
        source=row["source"],
        state=row["state"],
        running=row["running"],
        event_time=maybe_iso(row["event_time"]),
        applied=maybe_iso(row["applied"]),
        lag_s=row["lag_s"],
        events=row["events"],
        batches=row["batches"],
        slot=row["slot"],
        started=maybe_iso(row["started"]),
        heartbeat=maybe_iso(row["heartbeat"]),
        message=row["message"] or "",
        pid=row["pid"],
    )


class RemoteOut(BaseModel):
    name: str
    url: str
    time: str = Field(description="when it was added")
    author: str = Field(description="who added it")


class RemoteBundleOut(BaseModel):
    """A bundle's descriptor on a remote."""

    id: str
    time: str
    branch: str
    message: str
    author: str
    documents: int = Field(description="live documents over all its collections")
    collections: dict[str, int] = Field(description="each collection's live documents")


class RemoteLabelOut(BaseModel):
    """A label on a remote: its newest slot (its history is slots 1, 2, ...)."""

    name: str
    bundle: str
    time: str
    author: str
    slot: int
