"""Pulling a bundle (or a label) from a remote into a repository.

The bundle's documents become versions of a branch (by default a new, empty branch
named after the label or bundle), written as one transaction (``Repository.apply``) and
frozen as a local bundle with the **same id**, time and author; a pulled label is set
locally too.  The pull compares listings first, so documents whose content hash and
mtime are already in the branch are neither downloaded nor written, and names the
bundle lacks are deleted: the branch ends exactly as the bundle.  An existing branch
(pulling the same label again) is updated in place; a new one is forked from a local
bundle likely to be close (the label's current bundle here, or the bundle the push
used as its base), so a pull of a changed bundle downloads only the change.  Every body is checked against its hash
on the way (``Corrupt`` otherwise, and nothing becomes visible).  Blocking.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argonfs import codec
from argonfs.errors import NotFound
from argonfs.remote import format as f
from argonfs.remote.push import merge_join
from argonfs.store import Change, Repository
from argonfs.store.model import View
from argonfs.store.versions import DELETE, DROP, MKCOL, PAGE, PUT

log = logging.getLogger(__name__)


@dataclass
class PullReport:
    bundle: str
    branch: str
    label: str | None = None
    #: the bundle was already in the repository
    existed: bool = False
    documents: int = 0
    downloaded: int = 0
    bytes_downloaded: int = 0
    unchanged: int = 0
    deleted: int = 0
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve(remote: f.Remote, ref: str) -> tuple[str, str | None]:
    """(bundle id, label or None) for a bundle id or a label of the remote."""
    try:
        return remote.descriptor(ref).bundle, None
    except NotFound:
        pass
    try:
        slot = remote.label(ref)
    except NotFound:
        raise NotFound(f"remote {remote.url} has no bundle or label {ref!r}") from None
    assert slot.bundle is not None
    return slot.bundle, ref


def pull(repo: Repository, remote: f.Remote, ref: str, *, branch: str | None = None, progress: Callable[[int], None] | None = None) -> PullReport:
    bundle_id, label = resolve(remote, ref)
    desc = remote.descriptor(bundle_id)
    name = branch or label or bundle_id
    report = PullReport(bundle_id, name, label)
    try:
        local = repo.bundle(bundle_id)
        report.existed = True
        report.branch = local.branch
    except NotFound:
        try:
            repo.branch(name)
        except NotFound:
            _create_branch(repo, name, label, desc)
        view = repo.resolve(name)
        report.seq = repo.apply(view, _changes(repo, remote, desc, view, report, progress), kind="pull", message=f"pull {bundle_id} from {remote.url}")
        at = f"{name}@{report.seq}" if report.seq is not None else name
        when = datetime.fromtimestamp(desc.time_ns / 1e9, UTC).replace(tzinfo=None)
        when = when.replace(microsecond=when.microsecond // 1000 * 1000)
        repo.create_bundle(at, desc.message, bundle_id=bundle_id, time=when, author=desc.author)
    if label is not None:
        try:
            current = repo.label(label)["bundle"]
        except NotFound:
            current = None
        if current != bundle_id:
            repo.set_label(label, bundle_id)
    return report


def _create_branch(repo: Repository, name: str, label: str | None, desc: f.Descriptor) -> None:
    """A new branch for the pull: forked (O(1)) from a local bundle that is likely close
    to the pulled one, so only what differs is downloaded: the bundle the label points
    at here (pulled before), else the bundle the push used as its base.  Else empty."""
    candidates = []
    if label is not None:
        with contextlib.suppress(NotFound):
            candidates.append(repo.label(label)["bundle"])
    if isinstance(desc.extra.get("base"), str):
        candidates.append(desc.extra["base"])
    for bundle_id in candidates:
        try:
            repo.bundle(bundle_id)
        except NotFound:
            continue
        repo.create_branch(name, bundle_id)
        log.info("pull: branch %s forked from local bundle %s", name, bundle_id)
        return
    repo.create_branch(name, empty=True)


def _changes(
    repo: Repository, remote: f.Remote, desc: f.Descriptor, view: View, report: PullReport, progress: Callable[[int], None] | None
) -> Iterator[Change]:
    """What turns the branch into the bundle, bodies fetched a page at a time."""
    pinned = repo.pin(view)
    have = set(repo.collections(pinned))
    for collection in sorted(have - set(desc.collections)):
        yield Change(DROP, collection)
    for collection in sorted(desc.collections):
        local = repo.entries(pinned, collection) if collection in have else iter(())
        if collection not in have:
            yield Change(MKCOL, collection)
        need: list[f.RemoteEntry] = []
        for mine, theirs in merge_join(local, remote.entries(desc, collection)):
            if theirs is None:
                assert mine is not None
                report.deleted += 1
                yield Change(DELETE, collection, mine.stem)
                continue
            report.documents += 1
            if mine is not None and mine.hash == theirs.hash and mine.mtime_ns == theirs.mtime_ns:
                report.unchanged += 1
                continue
            need.append(theirs)
            if len(need) >= PAGE:
                yield from _fetched(remote, collection, need, report, progress)
                need = []
        yield from _fetched(remote, collection, need, report, progress)


def _fetched(remote: f.Remote, collection: str, need: list[f.RemoteEntry], report: PullReport, progress: Callable[[int], None] | None) -> Iterator[Change]:
    for entry, body in zip(need, remote.bodies(need), strict=True):
        report.downloaded += 1
        report.bytes_downloaded += len(body)
        if progress is not None:
            progress(len(body))
        yield Change(PUT, collection, entry.stem, codec.parse(body), entry.mtime_ns, raw=body)  # a bundle's bytes stay its bytes
