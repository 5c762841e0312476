"""remote add / list / remove / ls / log / gc, push and pull.

REMOTE is a remote's name (``argonfs remote add``) or a URL (gs://, s3://, file:// or a
path); with a URL, ``remote ls``, ``remote log`` and ``remote gc`` need no repository.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from argonfs.cli.common import AppContext, duration, echo_json, json_option, pass_app, table


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith(("/", "."))


def _remote(app: AppContext, name_or_url: str) -> Any:
    from argonfs.remote.objects import open_store
    from argonfs.remote.reading import Remote

    url = name_or_url if _is_url(name_or_url) else app.repo.remote(name_or_url)
    return Remote(open_store(url))


def _ns(value: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1e9))


class _TransferProgress:
    """Bytes moved so far, on one line of stderr, at most five times a second."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.done = 0
        self.shown = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown >= 0.2:
            self.shown = now
            click.echo(f"\r{self.verb}: {self.done / 2**20:8.1f} MiB", err=True, nl=False)

    def finish(self) -> None:
        if self.shown:
            click.echo(f"\r{self.verb}: {self.done / 2**20:8.1f} MiB", err=True)


#: seconds between progress lines when stderr is not a terminal
PROGRESS_INTERVAL_ENV = "ARGONFS_PROGRESS_INTERVAL"


class _PushProgress:
    """A push's documents (of the bundle's total) and bytes: a bar on stderr when it is
    a terminal, else a line every ``$ARGONFS_PROGRESS_INTERVAL`` seconds (default 5)
    and one at the end, e.g. ``push B: 40,000/100,000 documents, 12.3 MiB``."""

    def __init__(self, bundle_id: str) -> None:
        self.label = f"push {bundle_id}"
        self.tty = sys.stderr.isatty()
        self.interval = float(os.environ.get(PROGRESS_INTERVAL_ENV) or 5) if not self.tty else 0.2
        self.bytes = 0
        self.done = self.total = self.drawn = 0
        self.shown = time.monotonic()
        self.bar: Any = None

    def moved(self, n: int) -> None:
        """Bytes of an object written (or found already there)."""
        self.bytes += n

    def documents(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.tty and self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True, show_percent=True)
            self.bar.__enter__()
        now = time.monotonic()
        if now - self.shown >= self.interval:
            self.shown = now
            self._show()

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.update(self.done - self.drawn)
            self.drawn = self.done
        else:
            click.echo(f"{self.label}: {self.done:,}/{self.total:,} documents, {self.bytes / 2**20:.1f} MiB", err=True)

    def finish(self) -> None:
        if self.bar is not None:
            self._show()
            self.bar.__exit__(None, None, None)
            self.bar = None
        elif self.total or self.done:
            self._show()


@click.group()
def remote() -> None:
    """Buckets and directories that bundles and labels are pushed to and pulled from.

    \b
    gs://BUCKET[/PREFIX]   Google Cloud Storage (credentials: the standard chain;
                           STORAGE_EMULATOR_HOST for an emulator)
    s3://BUCKET[/PREFIX]   S3 (credentials: the standard AWS chain; AWS_ENDPOINT_URL_S3
                           or AWS_ENDPOINT_URL for another endpoint)
    az://CONTAINER[/PREFIX]  Azure Blob Storage (account and credentials:
                           AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT
                           with AZURE_STORAGE_KEY, a SAS token or DefaultAzureCredential);
                           also https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]
    file:///PATH or PATH   a directory
    """


@remote.command("add")
@click.argument("name")
@click.argument("url")
@pass_app
def add(app: AppContext, name: str, url: str) -> None:
    """Remember URL as remote NAME (in the repository, for every CLI and mount)."""
    from argonfs.remote.objects import check_url

    app.repo.add_remote(name, check_url(url))
    click.echo(f"{name} -> {url}")


@remote.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    rows = app.repo.list_remotes()
    if as_json:
        echo_json(rows)
        return
    table([[r["name"], r["url"]] for r in rows], ["REMOTE", "URL"])


@remote.command("remove")
@click.argument("name")
@pass_app
def remove(app: AppContext, name: str) -> None:
    """Forget remote NAME (nothing in the remote is touched)."""
    app.repo.remove_remote(name)
    click.echo(f"removed remote {name!r}")


@remote.command("ls")
@click.argument("name_or_url", metavar="REMOTE")
@json_option
@pass_app
def ls(app: AppContext, name_or_url: str, as_json: bool) -> None:
    """The bundles and labels of a remote."""
    r = _remote(app, name_or_url)
    bundles = []
    for bundle_id in r.bundle_ids():
        d = r.descriptor(bundle_id)
        bundles.append(
            {"bundle": d.bundle, "time_ns": d.time_ns, "branch": d.branch, "message": d.message, "author": d.author, "documents": sum(d.counts.values())}
        )
    labels = [{"name": s.name, "bundle": s.bundle, "time_ns": s.time_ns, "author": s.author, "slot": s.slot} for s in r.labels()]
    if as_json:
        echo_json({"url": r.url, "bundles": bundles, "labels": labels})
        return
    table([[b["bundle"], _ns(b["time_ns"]), b["branch"], str(b["documents"]), b["message"]] for b in bundles], ["BUNDLE", "TIME", "BRANCH", "DOCS", "MESSAGE"])
    if labels:
        click.echo("")
        table([[s["name"], s["bundle"], _ns(s["time_ns"]), s["author"]] for s in labels], ["LABEL", "BUNDLE", "SET", "AUTHOR"])


@remote.command("log")
@click.argument("name_or_url", metavar="REMOTE")
@click.argument("label")
@json_option
@pass_app
def log(app: AppContext, name_or_url: str, label: str, as_json: bool) -> None:
    """Every bundle LABEL pointed at in the remote, newest first."""
    rows = [{"slot": s.slot, "op": s.op, "bundle": s.bundle, "time_ns": s.time_ns, "author": s.author} for s in _remote(app, name_or_url).label_history(label)]
    if as_json:
        echo_json(rows)
        return
    table([[str(r["slot"]), _ns(r["time_ns"]), r["op"], r["bundle"] or "-", r["author"]] for r in rows], ["SLOT", "TIME", "OP", "BUNDLE", "AUTHOR"])


@remote.command("gc")
@click.argument("name_or_url", metavar="REMOTE")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted.")
@click.option("--grace", callback=duration, metavar="DURATION", help="Keep unreachable objects younger than this (default 1h).")
@json_option
@pass_app
def gc(app: AppContext, name_or_url: str, dry_run: bool, grace: float | None, as_json: bool) -> None:
    """Delete objects no bundle of the remote reaches, older than the grace period."""
    from argonfs.remote import gc as remote_gc

    report = remote_gc.collect(_remote(app, name_or_url), grace=remote_gc.DEFAULT_GRACE if grace is None else grace, dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{report.bundles} bundles reach {report.reachable} objects; {verb} {report.deleted} objects ({report.bytes_deleted} bytes); kept {report.kept_young} younger than the grace period"
    )


@click.command()
@click.argument("name_or_url", metavar="REMOTE")
@click.argument("refs", metavar="REF...", nargs=-1, required=True)
@json_option
@pass_app
def push(app: AppContext, name_or_url: str, refs: tuple[str, ...], as_json: bool) -> None:
    """Upload bundles to REMOTE.  A label pushes its bundle and then sets the label in the
    remote; a branch or BRANCH@... is bundled first (the new bundle id is printed)."""
    from argonfs.errors import NotFound
    from argonfs.remote.push import push_bundle

    repo = app.repo
    r = _remote(app, name_or_url)
    reports = []
    for ref in refs:
        label = None
        try:
            bundle_id = repo.bundle(ref).id
        except NotFound:
            try:
                bundle_id, label = repo.label(ref)["bundle"], ref
            except NotFound:
                bundle_id = repo.create_bundle(ref, f"pushed to {name_or_url}").id
                click.echo(f"bundled {ref} as {bundle_id}", err=True)
        progress = _PushProgress(bundle_id)
        try:
            report = push_bundle(repo, r, bundle_id, label=label, progress=progress.moved, documents=progress.documents)
        finally:
            progress.finish()
        reports.append(report.as_dict())
        if not as_json:
            what = f"{bundle_id} (label {label})" if label else bundle_id
            if report.existed:
                click.echo(f"{what}: already in {r.url}")
            else:
                click.echo(
                    f"{what}: uploaded {report.objects_uploaded} objects ({report.bytes_uploaded} bytes), "
                    f"skipped {report.objects_skipped} objects ({report.bytes_skipped} bytes); "
                    f"{report.uploaded_documents} of {report.documents} documents sent" + (f", base {report.base}" if report.base else "")
                )
    if as_json:
        echo_json(reports)


@click.command()
@click.argument("name_or_url", metavar="REMOTE")
@click.argument("ref", metavar="BUNDLE|LABEL")
@click.option("--branch", metavar="NAME", help="Branch to write (default: the label's name; none for a bundle id). An existing one is updated in place.")
@json_option
@pass_app
def pull(app: AppContext, name_or_url: str, ref: str, branch: str | None, as_json: bool) -> None:
    """Bring a bundle (or a label and its bundle) from REMOTE into this repository,
    keeping the bundle's id."""
    from argonfs.remote.pull import pull as pull_

    progress = _TransferProgress(f"pull {ref}")
    report = pull_(app.repo, _remote(app, name_or_url), ref, branch=branch, progress=progress if sys.stderr.isatty() else None)
    progress.finish()
    if as_json:
        echo_json(report.as_dict())
        return
    into = f"branch {report.branch}" if report.branch else "read-only, by its id"
    if report.existed:
        click.echo(f"{report.bundle}: already here ({into})" + (f"; label {report.label} set" if report.label else ""))
        return
    click.echo(
        f"{report.bundle} -> {into}: {report.documents} documents, downloaded {report.downloaded} "
        f"({report.bytes_downloaded} bytes), {report.unchanged} unchanged, {report.deleted} deleted" + (f"; label {report.label} set" if report.label else "")
    )


def register(main: click.Group) -> None:
    main.add_command(remote)
    main.add_command(push)
    main.add_command(pull)
