"""/api/v1: merge preview and apply, and revert.

A preview pins both sides: the source at its current state (``source_at``) and the
target at its head (``target_at``), and lists every document the merge would add,
update or delete and every conflict with its base, ours (the target's) and theirs (the
source's) values.  Its ``preview`` is a signed token of those two pinned states and the
strategy; ``POST /merges`` with it merges exactly that source state into the target,
and is refused with 409 and nothing written if the target has moved since (checked
before the merge and again at every append: store/repo/history.py ``merge(expect=)``).
Handlers are plain ``def`` (worker threads).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from argonfs import codec
from argonfs.console.api import NOT_FOUND, UNAUTHORIZED, Repo, Responses, Signed, Writer
from argonfs.console.paging import Signer, pinned_name, repin, seal, unseal
from argonfs.console.review import value_json
from argonfs.console.schemas import ConflictOut, MergeDocument, MergeIn, MergeOut, MergePreview, Problem, RevertIn
from argonfs.console.statuses import RequestError
from argonfs.errors import Conflict
from argonfs.store import Repository
from argonfs.store.repo.model import MergeResult

router = APIRouter(tags=["merges"])

Strategy = Literal["fail", "ours", "theirs"]
CONFLICTS: Responses = {409: {"model": Problem, "description": "conflicts (strategy fail), or the target moved since the preview"}}
#: times a preview pins the target again when it moves while the preview is worked out
PREVIEW_TRIES = 3


def merge_out(r: MergeResult, strategy: str) -> MergeOut:
    return MergeOut(**_fields(r, strategy))


def _fields(r: MergeResult, strategy: str) -> dict[str, Any]:
    return {
        "source": r.source,
        "target": r.target,
        "base": r.base,
        "strategy": strategy,
        "added": r.added,
        "updated": r.updated,
        "deleted": r.deleted,
        "dropped": r.dropped,
        "documents": [MergeDocument(collection=c, name=s + codec.SUFFIX, stem=s, change=ch) for c, s, ch in r.documents],
        "conflicts": [
            ConflictOut(
                collection=c,
                name=None if s is None else s + codec.SUFFIX,
                stem=s,
                kind=x.kind,
                path=x.path,
                base=value_json(x.base),
                ours=value_json(x.ours),
                theirs=value_json(x.theirs),
            )
            for c, s, x in r.conflicts
        ],
        "seq": r.seq,
    }


def preview(repo: Repository, signer: Signer, source: str, target: str, strategy: str) -> MergePreview:
    """What merging ``source`` into ``target`` would do now, and the token to apply it."""
    for attempt in range(PREVIEW_TRIES):
        src, tgt = repo.pin(source), repo.pin(target)
        at = pinned_name(src)
        try:
            result = repo.merge(at, target, strategy=strategy, dry_run=True, expect=tgt.seq)
            break
        except Conflict:
            if attempt == PREVIEW_TRIES - 1 or repo.pin(target).seq == tgt.seq:
                raise  # not the target moving: no shared history
    result.source = source
    state = {"s": source, "sa": at, "sb": str(src.branch_id), "t": target, "ts": tgt.seq, "tb": str(tgt.branch_id), "st": strategy}
    applicable = not (result.conflicts and strategy == "fail")
    return MergePreview(**_fields(result, strategy), source_at=at, target_at=pinned_name(tgt), applicable=applicable, preview=seal(signer, "merge", state))


def apply(repo: Repository, signer: Signer, token: str, message: str) -> MergeOut:
    """Apply exactly the preview ``token`` stands for; Conflict if the target moved."""
    state = unseal(signer, token, "merge", "invalid_preview")
    repin(repo, state["sa"], state["sb"])  # the source state is still the one previewed
    target = repo.pin(state["t"])
    if str(target.branch_id) != state["tb"]:
        raise Conflict(f"{state['t']!r} is not the branch the preview was made for (deleted and made again): preview it again")
    result = repo.merge(state["sa"], state["t"], strategy=state["st"], message=message, expect=state["ts"])
    result.source = state["s"]
    if result.conflicts and state["st"] == "fail":
        raise RequestError(409, "conflict", f"the merge has {len(result.conflicts)} conflicts: nothing was written (preview with strategy ours or theirs)")
    return merge_out(result, state["st"])


@router.get("/merges/preview", response_model=MergePreview, responses={**NOT_FOUND, 409: {"model": Problem, "description": "no shared history"}})
def merge_preview(
    repo: Repo,
    signed: Signed,
    source: Annotated[str, Query(description="the ref to merge from (any ref)")],
    target: Annotated[str, Query(description="the branch to merge into")],
    strategy: Annotated[Strategy, Query(description="fail: conflicts stop the merge; ours/theirs: conflicts resolved to that side")] = "fail",
) -> MergePreview:
    """Every document the merge would add, update or delete, and every conflict."""
    return preview(repo, signed, source, target, strategy)


@router.post("/merges", response_model=MergeOut, responses={**NOT_FOUND, **UNAUTHORIZED, **CONFLICTS})
def merge_apply(repo: Writer, signed: Signed, merge: MergeIn) -> MergeOut:
    """Apply a preview: exactly its documents, or 409 with nothing written."""
    return apply(repo, signed, merge.preview, merge.message)


@router.post(
    "/branches/{name}/revert",
    response_model=MergeOut,
    responses={**NOT_FOUND, **UNAUTHORIZED, 403: {"model": Problem, "description": "the branch is captured into"}},
    tags=["branches"],
)
def revert(repo: Writer, name: str, body: RevertIn) -> MergeOut:
    """New versions that make the branch equal to an earlier state; the history is kept."""
    return merge_out(repo.revert(name, body.to, message=body.message), "revert")
