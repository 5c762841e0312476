"""init, status, import, export."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from argonfs.cli.common import AppContext, duration, echo_json, json_option, pass_app


@click.command()
@click.option("--protect-main", is_flag=True, help="Protect the default branch: only merges and reverts may change it.")
@pass_app
def init(app: AppContext, protect_main: bool) -> None:
    """Create the repository (idempotent) with its default branch 'main'."""
    created = app.repo.init()
    state = "initialised" if created else "already initialised"
    click.echo(f"{state} repository {app.repo_name!r} on {app.repo.server or app.repo.where}")
    if protect_main:
        name = app.repo.default_branch
        app.repo.protect_branch(name)
        click.echo(f"branch {name!r} is protected")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only say which format steps would run.")
@pass_app
def upgrade(app: AppContext, dry_run: bool) -> None:
    """Migrate the repository to the format this argonfs writes.

    Stop mounts and writers running older argonfs versions first: they do not know the
    new format."""
    repo = app.open_repo(check_format=False)
    steps = repo.upgrade(dry_run=dry_run)
    if not steps:
        click.echo(f"repository {app.repo_name!r} is at format {repo.info()['format']}, nothing to do")
        return
    path = " -> ".join(str(n) for n in [steps[0] - 1, *steps])
    click.echo(f"{'would upgrade' if dry_run else 'upgraded'} repository {app.repo_name!r}: format {path}")


@click.command()
@json_option
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Say which MongoDB server and repository are in use, and what they hold."""
    repo = app.repo
    info = repo.info()
    out = {
        "server": repo.server,
        "mongo": repo.where,
        "repo": app.repo_name,
        "default_branch": info["default_branch"],
        "format": info.get("format", 1),
        "created": info["created"],
        **repo.stats(),
    }
    if as_json:
        echo_json(out)
        return
    click.echo(f"server:     {out['server']} at {out['mongo']}")
    click.echo(f"repository: {out['repo']} (default branch {out['default_branch']}, format {out['format']})")
    click.echo(f"contents:   {out['branches']} branches, {out['bundles']} bundles, {out['labels']} labels, {out['versions']} versions")


@click.command("import")
@click.argument("source")
@click.option("--branch", "-b", default=None, help="Branch to write (default: the default branch).")
@click.option("--collection", "-c", default=None, help="Import only this collection, or name the target of a single-collection source.")
@click.option("--batch-size", default=1000, show_default=True, help="Documents per write.")
@click.option("--checksum", is_flag=True, help="Compare every document, even when the source's files look unchanged since the last import.")
@json_option
@pass_app
def import_(app: AppContext, source: str, branch: str | None, collection: str | None, batch_size: int, checksum: bool, as_json: bool) -> None:
    """Import documents from a MongoDB URI or a directory of JSON/JSONL files.

    Unchanged documents are skipped, so re-running an import is safe.  A file or
    directory whose sizes, times and inodes are those of the last import into the
    collection, which nothing has written since, is not read at all (as rsync's
    quick check; --checksum reads it).
    """
    from argonfs.store.repo.model import ImportCounts
    from argonfs.store.repo.transfer import sources

    repo = app.repo
    branch = branch or repo.default_branch
    repo.resolve(branch)
    results = {}
    for src in sources(source, collection):
        fingerprint = None if checksum else src.fingerprint
        known = None if fingerprint is None else repo.unchanged_import(branch, src.collection, fingerprint)
        if known is not None:
            counts = ImportCounts(unchanged=known)
        else:
            with click.progressbar(length=src.count or 0, label=src.collection, file=sys.stderr) as bar:
                counts = repo.import_documents(branch, src.collection, src.docs, batch_size=batch_size, progress=bar.update, fingerprint=src.fingerprint)
        results[src.collection] = {**vars(counts), "quick": known is not None}
        if not as_json:
            how = "; its files are unchanged since the last import, not read" if known is not None else ""
            click.echo(f"{src.collection}: {counts.added} added, {counts.updated} updated, {counts.unchanged} unchanged (from {src.origin}{how})")
    if as_json:
        echo_json(results)
    elif not results:
        click.echo(f"nothing to import in {source}")


@click.command("export")
@click.argument("ref")
@click.argument("dest")
@click.option("--force", is_flag=True, help="Write into a non-empty directory, or replace existing collections.")
@pass_app
def export(app: AppContext, ref: str, dest: str, force: bool) -> None:
    """Materialise REF into a MongoDB database (DEST a URI naming the database) or a
    directory (DEST/<collection>/<id>.json)."""
    from argonfs.store.repo.transfer import export_to_directory, export_to_mongo, is_mongo_uri

    if is_mongo_uri(dest):
        counts = export_to_mongo(app.repo, ref, dest, force=force)
    else:
        counts = export_to_directory(app.repo, ref, Path(dest), force=force)
    for collection, n in counts.items():
        click.echo(f"{collection}: {n} documents")
    click.echo(f"exported {sum(counts.values())} documents in {len(counts)} collections from {ref}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be reclaimed.")
@click.option("--min-age", callback=duration, metavar="DURATION", help="Abort transactions idle this long (default 1h).")
@click.option("--grace", callback=duration, metavar="DURATION", help="Reclaim deleted branches this long after their deletion (default 1h).")
@json_option
@pass_app
def gc(app: AppContext, dry_run: bool, min_age: float | None, grace: float | None, as_json: bool) -> None:
    """Reclaim the payloads of versions no reader can ever see: those of transactions
    that never committed (idle longer than --min-age), and those of deleted branches
    that no branch, bundle, label, fork or merge base reaches.  Every version keeps its
    slot and metadata.  Safe while mounts and writers run."""
    from datetime import timedelta

    def td(seconds: float | None) -> timedelta | None:
        return None if seconds is None else timedelta(seconds=seconds)

    report = app.repo.gc(dry_run=dry_run, min_age=td(min_age), grace=td(grace))
    out = {
        "dry_run": dry_run,
        "records": report.total_records,
        "bytes": report.total_bytes,
        "by_reason": {reason: {"records": n, "bytes": report.bytes[reason]} for reason, n in report.records.items()},
        "aborted": report.aborted,
        "waiting": [{"branch": name, "deleted": t} for name, t in report.waiting],
    }
    if as_json:
        echo_json(out)
        return
    verb = "would reclaim" if dry_run else "reclaimed"
    click.echo(f"{verb} {out['records']} versions, {out['bytes']} bytes of documents")
    for reason, n in report.records.items():
        click.echo(f"  {reason}: {n} versions, {report.bytes[reason]} bytes")
    if report.aborted:
        click.echo(f"  {'would abort' if dry_run else 'aborted'} {len(report.aborted)} transactions: {', '.join(report.aborted)}")
    for name, t in report.waiting:
        click.echo(f"  deleted branch {name!r} (at {t:%Y-%m-%d %H:%M:%S}) is kept until its grace period ends")


def register(main: click.Group) -> None:
    for command in (init, upgrade, status, import_, export, gc):
        main.add_command(command)
