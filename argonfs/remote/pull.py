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
from argonfs.errors import Conflict, NotFound
from argonfs.naming import check_branch_name, check_label_name
from argonfs.remote import format as f
from argonfs.remote import reading
from argonfs.remote.push import merge_join
from argonfs.store import Change, Repository
from argonfs.store.engine.versions import DELETE, DROP, MKCOL, PAGE, PUT
from argonfs.store.repo.model import Bundle, View

log = logging.getLogger(__name__)


@dataclass
class PullReport:
    bundle: str
    #: the branch written; None for a bundle pulled by id without ``--branch`` (read by its id)
    branch: str | None
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


def resolve(remote: reading.Remote, ref: str) -> tuple[str, str | None]:
    """(bundle id, label or None) for a bundle id or a label of the remote (``Remote.resolve``)."""
    return remote.resolve(ref)


def pull(repo: Repository, remote: reading.Remote, ref: str, *, branch: str | None = None, progress: Callable[[int], None] | None = None) -> PullReport:
    """Pull a bundle (by id or label) into branch ``branch`` (default: the label's name;
    none for a bundle pulled by id).  Nothing of a pull a reader can name appears before
    its data is complete and verified: a new branch is written while it has no name
    (``Repository.stage_branch``), the bundle record is the commit point, and the branch's
    name and the label follow it.  A pull that fails or is killed before the bundle
    record leaves an unnamed branch record that gc reclaims; one killed after it leaves
    the whole bundle, and pulling again adds the name and the label."""
    bundle_id, label = resolve(remote, ref)
    name = branch or label
    if name is not None:
        check_branch_name(name)
    if label is not None:
        check_label_name(label)
    report = PullReport(bundle_id, name, label)
    try:
        local = repo.bundle(bundle_id)
    except NotFound:
        _fill(repo, remote, bundle_id, name, label, report, progress)
    else:
        report.existed = True
        report.branch = _existing(repo, local, name)
    if label is not None:
        try:
            current = repo.label(label)["bundle"]
        except NotFound:
            current = None
        if current != bundle_id:
            repo.set_label(label, bundle_id)
    return report


def _fill(
    repo: Repository, remote: reading.Remote, bundle_id: str, name: str | None, label: str | None, report: PullReport, progress: Callable[[int], None] | None
) -> None:
    """Write the bundle's documents and freeze them as the local bundle."""
    desc = remote.descriptor(bundle_id)
    when = datetime.fromtimestamp(desc.time_ns / 1e9, UTC).replace(tzinfo=None)
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    view = None
    if name is not None:
        with contextlib.suppress(NotFound):
            repo.branch(name)
            view = repo.resolve(name)  # the branch: its name cannot be a bundle id's
    if view is not None:  # an existing branch, updated in place: the transaction keeps it whole
        report.seq = repo.apply(view, _changes(repo, remote, desc, view, report, progress), kind="pull", message=f"pull {bundle_id} from {remote.url}")
        at = f"{name}@{report.seq}" if report.seq is not None else view
        repo.create_bundle(at, desc.message, bundle_id=bundle_id, time=when, author=desc.author)
        return
    staged = repo.stage_branch(name or bundle_id, _close_bundle(repo, label, desc), pull=bundle_id)
    report.seq = repo.apply(staged, _changes(repo, remote, desc, staged, report, progress), kind="pull", message=f"pull {bundle_id} from {remote.url}")
    repo.create_bundle(staged, desc.message, bundle_id=bundle_id, time=when, author=desc.author)
    if name is not None:
        repo.name_branch(staged, name)


def _existing(repo: Repository, local: Bundle, name: str | None) -> str | None:
    """The branch to report for a bundle already here.  A pull killed after its bundle
    record and before its branch's name gets the name now, and so does a bundle pulled
    by id and pulled again with ``--branch`` (its unnamed branch becomes writable)."""
    if name is None:
        return None
    try:
        repo.branch(name)
        return name
    except NotFound:
        pass
    try:
        repo.name_branch(repo.pin(local.id), name)
    except Conflict:
        return None  # the bundle's branch has a name of its own
    log.info("pull: bundle %s was here; its branch is named %s now", local.id, name)
    return name


def _close_bundle(repo: Repository, label: str | None, desc: f.Descriptor) -> str | None:
    """A local bundle likely to be close to the pulled one, for a new branch to fork from
    (O(1)), so only what differs is downloaded: the bundle the label points at here
    (pulled before), else the bundle the push used as its base.  None: start empty."""
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
        log.info("pull: forking from local bundle %s", bundle_id)
        return bundle_id
    return None


def _changes(
    repo: Repository, remote: reading.Remote, desc: f.Descriptor, view: View, report: PullReport, progress: Callable[[int], None] | None
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
        need: list[reading.RemoteEntry] = []
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


def _fetched(
    remote: reading.Remote, collection: str, need: list[reading.RemoteEntry], report: PullReport, progress: Callable[[int], None] | None
) -> Iterator[Change]:
    for entry, body in zip(need, remote.bodies(need), strict=True):
        report.downloaded += 1
        report.bytes_downloaded += len(body)
        if progress is not None:
            progress(len(body))
        yield Change(PUT, collection, entry.stem, codec.parse(body), entry.mtime_ns, raw=body)  # a bundle's bytes stay its bytes
