"""History: log, diff, merge, revert, readlog."""

from __future__ import annotations

import itertools
import re
from datetime import UTC

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, table, when

_OPS = {
    "put": "put",
    "del": "delete",
    "drop": "drop collection",
    "mkcol": "create collection",
    "merge": "MERGE",
    "revert": "REVERT",
    "import": "IMPORT",
    "rename": "RENAME",
    "protect": "PROTECT",
    "unprotect": "UNPROTECT",
    "abort": "ABORT (gc)",
}


@click.command("log")
@click.argument("ref", required=False)
@click.option("--collection", "-c", help="Only versions of this collection.")
@click.option("--id", "doc_id", metavar="ID", help="Only versions of this document (needs --collection).")
@click.option("--limit", "-n", default=20, show_default=True, help="Show at most this many versions (0: all).")
@click.option("--mount", "mountpoint", metavar="MOUNTPOINT", help="Instead: the recent refusals and errors of the mount daemon at MOUNTPOINT.")
@json_option
@pass_app
def log(app: AppContext, ref: str | None, collection: str | None, doc_id: str | None, limit: int, mountpoint: str | None, as_json: bool) -> None:
    """Versions of REF, newest first, continuing into the branch it forked from.

    REF may be BRANCH@SEQ or BRANCH@TIME to start in the past.  Each VERSION
    (BRANCH@SEQ) is the first seq that shows it: the versions of one batch (a merge, a
    capture batch, an import) are all shown from their commit's seq, and each one is
    read by its SLOT: `argonfs cat BRANCH C ID --slot SLOT`.

    With --mount MOUNTPOINT (and no REF): the last warnings and errors of that mount's
    daemon, such as writes it refused and why, from its log file."""
    if mountpoint is not None:
        if ref is not None or collection is not None or doc_id is not None:
            raise click.UsageError("--mount takes no REF, --collection or --id")
        _mount_log(mountpoint, limit, as_json)
        return
    if ref is None:
        raise click.UsageError("missing REF (or --mount MOUNTPOINT)")
    _versions(app, ref, collection, doc_id, limit, as_json)


#: the daemon's log lines worth showing: refusals (WARNING) and failures (ERROR, CRITICAL)
_NOTABLE = re.compile(r"^\S+ \S+ \S+ (WARNING|ERROR|CRITICAL) ")


def _mount_log(mountpoint: str, limit: int, as_json: bool) -> None:
    from argonfs import daemon

    path = daemon.log_file(mountpoint)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise click.ClickException(
            f"no mount log for {mountpoint} (expected {path}): was it mounted by 'argonfs mount' on this machine, as this user?"
        ) from None
    lines = [line for line in text.splitlines() if _NOTABLE.match(line)]
    lines = lines[-limit:] if limit else lines
    if as_json:
        echo_json({"log": str(path), "lines": lines})
        return
    click.echo(f"{path}: {len(lines)} recent warnings and errors", err=True)
    for line in lines:
        click.echo(line)


def _versions(app: AppContext, ref: str, collection: str | None, doc_id: str | None, limit: int, as_json: bool) -> None:
    from argonfs import codec

    if doc_id is not None and collection is None:
        raise click.UsageError("--id needs --collection")
    stem = None
    if doc_id is not None:
        stem = codec.filename_to_stem(doc_id) or doc_id
    entries = app.repo.log(ref, collection, stem)
    rows = [
        {
            "branch": e.branch,
            "seq": e.seq,
            "slot": e.slot,
            "time": e.time,
            "author": e.author,
            "op": _OPS.get(e.op, e.op) + (f" ({e.txn_kind})" if e.txn and e.collection else ""),
            "collection": e.collection,
            "id": e.stem + codec.SUFFIX if e.stem else None,
            "size": e.size,
        }
        for e in itertools.islice(entries, limit or None)
    ]
    if as_json:
        echo_json(rows)
        return
    table(
        [[f"{r['branch']}@{r['seq']}", str(r["slot"]), when(r["time"]), r["author"], r["op"], r["collection"] or "-", r["id"] or "-"] for r in rows],
        ["VERSION", "SLOT", "TIME (UTC)", "AUTHOR", "OP", "COLLECTION", "ID"],
    )


def _ejson(value: object) -> object:
    """A BSON value as JSON-compatible relaxed Extended JSON."""
    import json

    from bson import json_util

    from argonfs import codec

    return json.loads(json_util.dumps(value, json_options=codec.JSON_OPTIONS))


_MARKS = {"added": "+", "removed": "-", "modified": "~"}
_MERGE_MARKS = {"added": "+", "deleted": "-", "updated": "~"}


@click.command("diff")
@click.argument("old", metavar="A")
@click.argument("new", metavar="B")
@click.option("--collection", "-c", help="Only this collection.")
@click.option("--stat", is_flag=True, help="Only counts per collection.")
@json_option
@pass_app
def diff(app: AppContext, old: str, new: str, collection: str | None, stat: bool, as_json: bool) -> None:
    """Documents added (+), removed (-) and modified (~) from A to B, and for modified
    documents the fields that changed (JSON paths, old and new values).

    When A and B share history, the cost follows the changes since their common
    ancestor, not the size of the collections.  Exit status 0 either way."""
    import json

    from argonfs import codec

    changes = app.repo.diff(old, new, collection, fields=not stat)
    if stat:
        counts: dict[str, dict[str, int]] = {}
        for ch in changes:
            row = counts.setdefault(ch.collection, {"added": 0, "removed": 0, "modified": 0})
            row[ch.change] += 1
        if as_json:
            echo_json(counts)
        else:
            for c, row in counts.items():
                click.echo(f"{c}: {row['added']} added, {row['removed']} removed, {row['modified']} modified")
        return
    rows = [
        {
            "collection": ch.collection,
            "id": ch.stem + codec.SUFFIX,
            "change": ch.change,
            "fields": [{"path": f.path, "change": f.kind, "old": _ejson(f.old), "new": _ejson(f.new)} for f in ch.fields],
        }
        for ch in changes
    ]
    if as_json:
        echo_json(rows)
        return
    for item in rows:
        click.echo(f"{_MARKS[item['change']]} {item['collection']}/{item['id']}")
        for f in item["fields"]:
            old_text = "(absent)" if f["change"] == "added" else json.dumps(f["old"], ensure_ascii=False)
            new_text = "(absent)" if f["change"] == "removed" else json.dumps(f["new"], ensure_ascii=False)
            click.echo(f"    {f['path']}: {old_text} -> {new_text}")


def _conflict_line(collection: str, stem: str | None, c: object) -> str:
    import json

    from argonfs import codec

    where = f"{collection}/{stem}{codec.SUFFIX}" if stem is not None else f"{collection} (collection)"
    kind = c.kind  # type: ignore[attr-defined]
    if kind == "field":
        parts = [f"{side} {json.dumps(_ejson(getattr(c, side)), ensure_ascii=False)}" for side in ("base", "ours", "theirs")]
        return f"CONFLICT {kind:<13} {where} {c.path}: " + ", ".join(parts)  # type: ignore[attr-defined]
    if kind == "drop-modify":
        return f"CONFLICT {kind:<13} {where}: ours {c.ours}, theirs {c.theirs}"  # type: ignore[attr-defined]
    return f"CONFLICT {kind:<13} {where}"


@click.command("merge")
@click.argument("source")
@click.argument("target")
@click.option(
    "--strategy",
    type=click.Choice(["fail", "ours", "theirs"]),
    default="fail",
    show_default=True,
    help="On conflict: change nothing (fail), or keep that side at each conflict.",
)
@click.option("--dry-run", is_flag=True, help="Compute and report, write nothing.")
@click.option("-m", "--message", default="", help="Recorded with the merge.")
@json_option
@pass_app
def merge(app: AppContext, source: str, target: str, strategy: str, dry_run: bool, message: str, as_json: bool) -> None:
    """Three-way merge of SOURCE (any ref) into the branch TARGET.

    Documents changed on both sides merge field by field; conflicts are listed
    precisely.  The merge is applied atomically and recorded, so merging again later
    only brings what is new.  Exit status 6 when conflicts stop it (strategy fail)."""
    from argonfs.errors import Conflict

    r = app.repo.merge(source, target, strategy=strategy, dry_run=dry_run, message=message)
    stopped = bool(r.conflicts) and strategy == "fail"
    if as_json:
        echo_json(
            {
                "source": r.source,
                "target": r.target,
                "base": r.base,
                "seq": r.seq,
                "dry_run": dry_run,
                "applied": r.seq is not None,
                "added": r.added,
                "updated": r.updated,
                "deleted": r.deleted,
                "dropped": r.dropped,
                "documents": [{"collection": c, "id": s, "change": change} for c, s, change in r.documents],
                "conflicts": [
                    {"collection": c, "id": s, "kind": k.kind, "path": k.path, "base": _ejson(k.base), "ours": _ejson(k.ours), "theirs": _ejson(k.theirs)}
                    for c, s, k in r.conflicts
                ],
            }
        )
    else:
        for c, stem, conflict in r.conflicts:
            click.echo(_conflict_line(c, stem, conflict))
        if dry_run:
            from argonfs import codec

            for c, stem, change in r.documents:
                click.echo(f"{_MERGE_MARKS[change]} {c}/{stem}{codec.SUFFIX}")
        verb = "would merge" if dry_run or stopped else "merged"
        summary = f"{verb} {source} into {target} (base {r.base}): {r.added} added, {r.updated} updated, {r.deleted} deleted"
        if r.dropped:
            summary += f", dropped {', '.join(r.dropped)}"
        if r.seq is not None:
            summary += f"; now {target}@{r.seq}"
        click.echo(summary)
    if stopped:
        raise Conflict(f"{len(r.conflicts)} conflict(s): nothing changed (resolve them, or use --strategy ours|theirs)")


@click.command("revert")
@click.argument("branch")
@click.option("--to", "to", required=True, metavar="SEQ|TIME|REF", help="A seq or ISO time of BRANCH, or any ref (bundle, label, other@SEQ).")
@click.option("-m", "--message", default="", help="Recorded with the revert.")
@pass_app
def revert(app: AppContext, branch: str, to: str, message: str) -> None:
    """Make BRANCH equal to an earlier state by writing new versions (atomically);
    its history is kept, so a revert can itself be reverted."""
    r = app.repo.revert(branch, to, message=message)
    summary = f"reverted {branch} to {r.base}: {r.added} restored, {r.updated} updated, {r.deleted} deleted"
    if r.dropped:
        summary += f", dropped {', '.join(r.dropped)}"
    click.echo(summary + (f"; now {branch}@{r.seq}" if r.seq is not None else "; nothing to change"))


@click.command("readlog")
@click.argument("ref", required=False)
@click.option("--since", metavar="TIME", help="Only reads at or after this ISO time (UTC unless a zone is given).")
@click.option("--limit", "-n", default=100, show_default=True, help="At most this many entries (0: all).")
@json_option
@pass_app
def readlog(app: AppContext, ref: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Who opened which document, and when, through mounts started with --read-log.

    REF is the branch, BRANCH@SEQ or bundle id as it appeared in the path."""
    from datetime import datetime

    when_since = None
    if since is not None:
        try:
            when_since = datetime.fromisoformat(since)
        except ValueError:
            raise click.BadParameter(f"{since!r} is not an ISO 8601 time", param_hint="--since") from None
        if when_since.tzinfo is not None:
            when_since = when_since.astimezone(UTC).replace(tzinfo=None)
    rows = app.repo.read_log(ref, since=when_since, limit=limit)
    if as_json:
        echo_json(rows)
        return
    table([[when(r["time"]), r["user"], r["ref"], r["collection"], f"{r['id']}.json"] for r in rows], ["TIME (UTC)", "USER", "REF", "COLLECTION", "ID"])


def register(main: click.Group) -> None:
    main.add_command(readlog)
    main.add_command(log)
    main.add_command(diff)
    main.add_command(merge)
    main.add_command(revert)
