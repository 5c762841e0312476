"""What the API answers, as pydantic models: the OpenAPI schema at /api/v1/openapi.json
is generated from these, so a client can be generated from it too.

Times are UTC in ISO 8601 with a ``Z``; documents are MongoDB Extended JSON in relaxed
mode (the form ``argonfs cat`` prints, docs/formats.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def iso(t: datetime) -> str:
    """A stored (naive UTC) time as ISO 8601 with a Z."""
    return t.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Problem(BaseModel):
    """Every error: a stable name, one line for a person, and more when there is more."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["unknown ref 'nope': no bundle, branch or label has that name"])
    detail: Any = None


class Change(BaseModel):
    """The newest version of a branch's own history: when, by whom, what."""

    seq: int
    time: str
    author: str
    op: str


class BranchOut(BaseModel):
    name: str
    head: int = Field(description="the branch's newest seq (BRANCH@SEQ names any state up to it)")
    parent: str | None = Field(description="the branch it forked from (null: none, or that branch was deleted)")
    fork_seq: int
    created: str
    author: str = Field(description="who created it")
    protected: bool
    last: Change | None = Field(description="its newest version; null while it has none of its own")


class BranchIn(BaseModel):
    """A branch to create."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    from_: str | None = Field(default=None, alias="from", description="the ref to fork from (default: the default branch's head)")


class BranchDeleted(BaseModel):
    name: str


class Protection(BaseModel):
    branch: str
    protected: bool
    changed: bool = Field(description="false when the branch already was (or was not) protected")


class BundleOut(BaseModel):
    id: str
    branch: str
    seq: int
    message: str
    author: str
    time: str
    labels: list[str] = Field(default_factory=list, description="labels pointing at it (only on GET /bundles/{id})")


class BundlesPage(BaseModel):
    items: list[BundleOut]
    next: str | None = Field(description="cursor of the next page; null on the last")


class LabelOut(BaseModel):
    name: str
    bundle: str
    time: str
    author: str


class LabelChange(BaseModel):
    name: str
    op: str = Field(description="set or delete")
    bundle: str | None
    time: str
    author: str


class CollectionsOut(BaseModel):
    ref: str
    at: str = Field(description="the ref pinned: BRANCH@SEQ or a bundle id, naming exactly the state shown")
    collections: list[str]


class EntryOut(BaseModel):
    name: str = Field(description="file name: the stem and .json")
    stem: str
    size: int
    seq: int
    time: str
    author: str
    hash: str
    document: dict[str, Any] | None = Field(default=None, description="the document, when asked with bodies=true")


class DocumentsPage(BaseModel):
    ref: str
    at: str
    collection: str
    items: list[EntryOut]
    next: str | None = Field(description="cursor of the next page (same snapshot); null on the last")


class DocumentOut(BaseModel):
    ref: str
    collection: str
    name: str
    stem: str
    seq: int
    size: int
    hash: str
    time: str
    author: str
    document: dict[str, Any]


class VersionOut(BaseModel):
    """One entry of a document's history, newest first."""

    branch: str
    seq: int = Field(description="where the version became visible: BRANCH@SEQ shows it")
    slot: int = Field(description="the slot holding it: GET ...?slot=N reads it")
    time: str
    author: str
    op: str = Field(description="put, del, or drop/mkcol of the collection")
    size: int | None


class HistoryPage(BaseModel):
    ref: str
    at: str
    collection: str
    stem: str
    items: list[VersionOut]
    next: str | None


class WriteOut(BaseModel):
    ref: str
    collection: str
    name: str
    stem: str
    seq: int = Field(description="the branch's seq of the write")
    author: str


class LogEntryOut(BaseModel):
    """One entry of a ref's log, newest first."""

    branch: str
    seq: int = Field(description="where the version became visible: BRANCH@SEQ shows it")
    slot: int = Field(description="the slot holding it (a document's version: GET ...?slot=N reads it)")
    time: str
    author: str
    op: str = Field(description="put, del, drop or mkcol; or a merge, revert, protect... of the branch")
    collection: str | None
    name: str | None = Field(description="the document's file name; null for an entry of a collection or of the branch")
    stem: str | None
    size: int | None
    transaction: str | None = Field(description="merge, revert, ...: the operation that wrote it, if one did")


class LogPage(BaseModel):
    ref: str
    at: str
    items: list[LogEntryOut]
    scanned: int = Field(description="log entries this page read; with filters a page may hold fewer than limit items and still have a next")
    next: str | None = Field(description="cursor of the next page (a position in the log, same snapshot); null at the end")


class FieldChangeOut(BaseModel):
    path: str = Field(description="a JSON path: a.b, a[2], or $ for the whole document")
    change: str = Field(description="added, removed or modified")
    old: Any = None
    new: Any = None


class DiffItem(BaseModel):
    collection: str
    name: str
    stem: str
    change: str = Field(description="added, removed or modified (from `from` to `to`)")
    fields: list[FieldChangeOut] = Field(description="for a modified document, every field that changed")


class DiffPage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    at_from: str = Field(description="`from` pinned (BRANCH@SEQ or a bundle id)")
    at_to: str
    items: list[DiffItem]
    next: str | None = Field(description="cursor of the next page (same two snapshots); null on the last")


class MergeDocument(BaseModel):
    collection: str
    name: str
    stem: str
    change: str = Field(description="added, updated or deleted in the target")


class ConflictOut(BaseModel):
    collection: str
    name: str | None = Field(description="the document's file name; null for a conflict of the whole collection")
    stem: str | None
    kind: str = Field(description="field, delete-modify, add-add or drop-modify")
    path: str = Field(description="the field's JSON path, or $ for the whole document")
    base: Any = None
    ours: Any = Field(default=None, description="the target's side")
    theirs: Any = Field(default=None, description="the source's side")


class MergeOut(BaseModel):
    source: str
    target: str
    base: str = Field(description="the merge base, pinned")
    strategy: str
    added: int
    updated: int
    deleted: int
    dropped: list[str] = Field(description="collections the merge drops")
    documents: list[MergeDocument] = Field(description="every document written (or, for a preview, that would be)")
    conflicts: list[ConflictOut]
    seq: int | None = Field(description="the target's seq after the merge; null for a preview or when nothing was written")


class MergePreview(MergeOut):
    source_at: str = Field(description="the source pinned: an apply merges exactly this state")
    target_at: str = Field(description="the target pinned: an apply is refused (409) once the target has moved past it")
    applicable: bool = Field(description="false when the strategy is fail and there are conflicts")
    preview: str = Field(description="hand this to POST /merges to apply exactly this preview")


class MergeIn(BaseModel):
    preview: str = Field(description="the `preview` of GET /merges/preview")
    message: str = ""


class RevertIn(BaseModel):
    to: str = Field(description="a seq or ISO time of the branch, or any ref (bundle, label, other@SEQ)")
    message: str = ""
