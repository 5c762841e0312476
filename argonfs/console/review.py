"""/api/v1: the log of a ref, filtered and paged by its position in the store, and the
diff of two refs down to the fields.

The log is paged by position, not by count: a cursor holds the pinned snapshot and the
(layer, slot) of the last entry read, so the millionth entry costs what the first does.
Filters (collection, document, author, time range) are applied while the log is read,
newest first; a page reads at most ``SCAN`` entries, so a filter that matches little
answers a short (even empty) page with a ``next`` rather than reading the whole log in
one request.  ``since`` ends the walk at the first entry older than it (times follow the
log's order, to within the clock skew between writers).

A diff's pages all come from the two snapshots its first page pinned; each page is the
store's diff (hashes) sliced after the cursor's position, with the changed fields
worked out for that page's documents only.  Handlers are plain ``def`` (worker threads).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query

from argonfs import codec
from argonfs.console.api import NOT_FOUND, CursorArg, Limit, Repo, Signed
from argonfs.console.documents import stem_of
from argonfs.console.paging import DEFAULT_LIMIT, Signer, page_of, pinned_name, repin, seal, snapshot, unseal
from argonfs.console.schemas import DiffItem, DiffPage, FieldChangeOut, LogEntryOut, LogPage, iso
from argonfs.console.statuses import RequestError
from argonfs.errors import InvalidName
from argonfs.store import Repository, View
from argonfs.store.engine.diff import DocChange
from argonfs.store.repo.model import LogEntry

router = APIRouter()

#: log entries one page reads at most, whatever its filters match
SCAN = 10_000

#: the log's own names of its operations, as the API shows them
OPS = {"del": "delete"}


def value_json(value: Any) -> Any:
    """A BSON value as a JSON value (relaxed Extended JSON, as documents are shown)."""
    return orjson.loads(codec.render({"v": value}))["v"]


def log_entry_out(e: LogEntry) -> LogEntryOut:
    return LogEntryOut(
        branch=e.branch,
        seq=e.seq,
        slot=e.slot,
        time=iso(e.time),
        author=e.author,
        op=OPS.get(e.op, e.op),
        collection=e.collection or None,
        name=e.stem + codec.SUFFIX if e.stem else None,
        stem=e.stem,
        size=e.size,
        transaction=e.txn_kind if e.collection else None,
    )


def _utc(t: datetime | None) -> datetime | None:
    """A time given with or without its zone as the store keeps times (naive UTC)."""
    if t is None or t.tzinfo is None:
        return t
    return t.astimezone(UTC).replace(tzinfo=None)


def _position(after: str) -> tuple[int, int] | None:
    layer, _, slot = after.partition(":")
    if after == "":
        return None
    if not (layer.isdigit() and slot.isdigit()):
        raise RequestError(400, "invalid_cursor", "the cursor is not one of a log")
    return int(layer), int(slot)


@router.get("/refs/{ref}/log", response_model=LogPage, responses=NOT_FOUND, tags=["history"])
def read_log(
    repo: Repo,
    signed: Signed,
    ref: str,
    collection: Annotated[str | None, Query(description="only this collection's entries")] = None,
    id: Annotated[str | None, Query(description="only this document's (its file name or stem); needs collection")] = None,
    author: Annotated[str | None, Query(description="only this author's entries")] = None,
    since: Annotated[datetime | None, Query(description="only entries at or after this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="only entries at or before this time (ISO 8601)")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorArg = None,
) -> LogPage:
    """The versions a ref sees, newest first, into the branches it forked from."""
    if id is not None and collection is None:
        raise InvalidName("a document filter (id) needs a collection")
    snap = snapshot(repo, ref, cursor, signed)
    low, high = _utc(since), _utc(until)
    items: list[LogEntry] = []
    scanned, more, last = 0, False, None
    for e in repo.log(snap.view, collection, stem_of(id) if id is not None else None, below=_position(snap.after)):
        if low is not None and e.time < low:
            break
        if len(items) == limit or scanned == SCAN:
            more = True
            break
        scanned += 1
        last = e
        if (high is None or e.time <= high) and (author is None or e.author == author):
            items.append(e)
    nxt = snap.next(f"{last.layer}:{last.slot}") if more and last is not None else None
    return LogPage(ref=ref, at=pinned_name(snap.view), items=[log_entry_out(e) for e in items], scanned=scanned, next=nxt)


def change_out(ch: DocChange) -> DiffItem:
    fields = [FieldChangeOut(path=f.path, change=f.kind, old=value_json(f.old), new=value_json(f.new)) for f in ch.fields]
    return DiffItem(collection=ch.collection, name=ch.stem + codec.SUFFIX, stem=ch.stem, change=ch.change, fields=fields)


def diff_page(
    repo: Repository, signer: Signer, old: str, new: str, collection: str | None, limit: int, cursor: str | None
) -> tuple[View, View, list[DocChange], str | None]:
    """One page of the diff of ``old`` and ``new``: the two pinned views, the page's
    changes (with their fields) and the next page's cursor."""
    if cursor is None:
        a, b, after = repo.pin(old), repo.pin(new), ("", "")
    else:
        state = unseal(signer, cursor, "diff")
        if (state.get("from"), state.get("to"), state.get("c")) != (old, new, collection):
            raise RequestError(400, "invalid_cursor", "the cursor belongs to another diff")
        a, b = repin(repo, state["fa"], state["fb"]), repin(repo, state["ta"], state["tb"])
        after = (state["pc"], state["ps"])
    changes = [ch for ch in repo.diff(a, b, collection, fields=False) if (ch.collection, ch.stem) > after]
    page, more = page_of(changes, limit)
    page = repo.diff_fields(a, b, page)
    nxt = None
    if more and page:
        state = {"from": old, "to": new, "c": collection, "pc": page[-1].collection, "ps": page[-1].stem}
        state |= {"fa": pinned_name(a), "fb": str(a.branch_id), "ta": pinned_name(b), "tb": str(b.branch_id)}
        nxt = seal(signer, "diff", state)
    return a, b, page, nxt


@router.get("/diff", response_model=DiffPage, response_model_by_alias=True, responses=NOT_FOUND, tags=["history"])
def diff(
    repo: Repo,
    signed: Signed,
    old: Annotated[str, Query(alias="from", description="the ref to compare from")],
    new: Annotated[str, Query(alias="to", description="the ref to compare to")],
    collection: Annotated[str | None, Query(description="only this collection")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorArg = None,
) -> DiffPage:
    """Documents added, removed and modified from one ref to the other, by collection
    and name, each modified one with every field that changed (old and new value)."""
    a, b, page, nxt = diff_page(repo, signed, old, new, collection, limit, cursor)
    return DiffPage.model_validate(
        {"from": old, "to": new, "at_from": pinned_name(a), "at_to": pinned_name(b), "items": [change_out(ch) for ch in page], "next": nxt}
    )
