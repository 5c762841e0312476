"""/api/v1: branches (listing, creating, deleting, protecting), bundles and labels, as JSON.

Handlers are plain ``def``: FastAPI runs them in its worker threads, so each blocking
``Repository`` call happens off the event loop.  Each one calls the store and shapes the
answer with the models of schemas.py; errors go through the one seam of app.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from argonfs.console.auth import repository, writer
from argonfs.console.paging import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Signer, page_of, signer
from argonfs.console.schemas import (
    BranchDeleted,
    BranchIn,
    BranchOut,
    BundleOut,
    BundlesPage,
    Change,
    LabelChange,
    LabelOut,
    Problem,
    Protection,
    iso,
)
from argonfs.store import Branch, Bundle, Repository

router = APIRouter()

Repo = Annotated[Repository, Depends(repository)]
#: the repository writing as the token's name (401 without the token)
Writer = Annotated[Repository, Depends(writer)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]
CursorArg = Annotated[str | None, Query(description="the `next` cursor of the previous page")]
Signed = Annotated[Signer, Depends(signer)]

#: the error answers an endpoint lists in the OpenAPI schema (every error has Problem's shape)
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "no such name"}}
UNAUTHORIZED: Responses = {401: {"model": Problem, "description": "no token, or not this server's"}}

#: the pseudo-ref of a cursor over the bundle list (cursors name what they list)
BUNDLES = "bundles"


def branch_out(repo: Repository, b: Branch) -> BranchOut:
    """A branch with its head and its newest version (two indexed reads)."""
    head = repo.head(b.name)
    last = None
    if head:  # the first entry of its log is then its own newest version
        entry = next(iter(repo.log(b.name)), None)
        if entry is not None:
            last = Change(seq=entry.seq, time=iso(entry.time), author=entry.author, op=entry.op)
    return BranchOut(
        name=b.name,
        head=head,
        parent=b.parent_name,
        fork_seq=b.fork_seq,
        created=iso(b.created),
        author=b.author,
        protected=bool(b.protected),
        last=last,
    )


def bundle_out(b: Bundle, labels: list[str] | None = None) -> BundleOut:
    return BundleOut(id=b.id, branch=b.branch, seq=b.seq, message=b.message, author=b.author, time=iso(b.time), labels=labels or [])


@router.get("/branches", response_model=list[BranchOut], tags=["branches"])
def list_branches(repo: Repo) -> list[BranchOut]:
    """Every branch by name, with its head, protection and newest version."""
    return [branch_out(repo, b) for b in repo.list_branches(protection=True)]


@router.get("/branches/{name}", response_model=BranchOut, responses=NOT_FOUND, tags=["branches"])
def get_branch(repo: Repo, name: str) -> BranchOut:
    return branch_out(repo, repo.branch(name))


@router.post(
    "/branches",
    status_code=201,
    response_model=BranchOut,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        400: {"model": Problem, "description": "a name argonfs does not accept"},
        409: {"model": Problem, "description": "the branch exists"},
    },
    tags=["branches"],
)
def create_branch(repo: Writer, branch: BranchIn) -> BranchOut:
    """Fork a branch from any ref (default: the default branch's head), in constant time."""
    return branch_out(repo, repo.create_branch(branch.name, branch.from_))


@router.delete(
    "/branches/{name}",
    response_model=BranchDeleted,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        403: {"model": Problem, "description": "the branch is protected"},
        409: {"model": Problem, "description": "the default branch, or branches fork from it (force=true deletes it anyway)"},
    },
    tags=["branches"],
)
def delete_branch(
    repo: Writer, name: str, force: Annotated[bool, Query(description="delete even the default branch or one others fork from")] = False
) -> BranchDeleted:
    """Delete a branch's name; its bundles and the branches forked from it keep working."""
    repo.delete_branch(name, force=force)
    return BranchDeleted(name=name)


@router.put("/branches/{name}/protection", response_model=Protection, responses={**NOT_FOUND, **UNAUTHORIZED}, tags=["branches"])
def protect_branch(repo: Writer, name: str) -> Protection:
    """Refuse direct writes to the branch from now on, in every process (merges into it
    and reverts of it stay allowed)."""
    return Protection(branch=name, protected=True, changed=repo.protect_branch(name))


@router.delete("/branches/{name}/protection", response_model=Protection, responses={**NOT_FOUND, **UNAUTHORIZED}, tags=["branches"])
def unprotect_branch(repo: Writer, name: str) -> Protection:
    """Allow direct writes to the branch again."""
    return Protection(branch=name, protected=False, changed=repo.unprotect_branch(name))


@router.get("/bundles", response_model=BundlesPage, tags=["bundles"])
def list_bundles(repo: Repo, signed: Signed, limit: Limit = DEFAULT_LIMIT, cursor: CursorArg = None) -> BundlesPage:
    """Bundles newest first, a page at a time."""
    before = Cursor.decode(cursor, BUNDLES, signed).after if cursor is not None else None
    bundles, more = page_of(repo.list_bundles(limit + 1, before=before), limit)
    nxt = Cursor(BUNDLES, "", "", bundles[-1].id).encode(signed) if more else None
    return BundlesPage(items=[bundle_out(b) for b in bundles], next=nxt)


@router.get("/bundles/{bundle_id}", response_model=BundleOut, responses=NOT_FOUND, tags=["bundles"])
def get_bundle(repo: Repo, bundle_id: str) -> BundleOut:
    """One bundle and the labels that point at it."""
    b = repo.bundle(bundle_id)
    return bundle_out(b, [lab["name"] for lab in repo.list_labels() if lab["bundle"] == b.id])


def label_out(row: dict[str, Any]) -> LabelOut:
    return LabelOut(name=row["name"], bundle=row["bundle"], time=iso(row["time"]), author=row["author"])


@router.get("/labels", response_model=list[LabelOut], tags=["labels"])
def list_labels(repo: Repo) -> list[LabelOut]:
    """Every label by name and the bundle it names now."""
    return [label_out(row) for row in repo.list_labels()]


@router.get("/labels/{name}", response_model=LabelOut, responses=NOT_FOUND, tags=["labels"])
def get_label(repo: Repo, name: str) -> LabelOut:
    return label_out(repo.label(name))


@router.get("/labels/{name}/history", response_model=list[LabelChange], responses=NOT_FOUND, tags=["labels"])
def label_history(repo: Repo, name: str) -> list[LabelChange]:
    """Every change of a label, newest first (kept after the label is deleted)."""
    return [LabelChange(name=r["name"], op=r["op"], bundle=r["bundle"], time=iso(r["time"]), author=r["author"]) for r in repo.label_history(name)]
