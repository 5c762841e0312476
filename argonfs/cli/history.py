"""History: log, diff."""

from __future__ import annotations

import itertools

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, table, when

_OPS = {"put": "put", "del": "delete", "drop": "drop collection", "mkcol": "create collection"}


@click.command("log")
@click.argument("ref")
@click.option("--collection", "-c", help="Only versions of this collection.")
@click.option("--id", "doc_id", metavar="ID", help="Only versions of this document (needs --collection).")
@click.option("--limit", "-n", default=20, show_default=True, help="Show at most this many versions (0: all).")
@json_option
@pass_app
def log(app: AppContext, ref: str, collection: str | None, doc_id: str | None, limit: int, as_json: bool) -> None:
    """Versions of REF, newest first, continuing into the branch it forked from.

    REF may be BRANCH@SEQ or BRANCH@TIME to start in the past."""
    from argonfs import codec

    if doc_id is not None and collection is None:
        raise click.UsageError("--id needs --collection")
    stem = None
    if doc_id is not None:
        stem = codec.filename_to_stem(doc_id) or doc_id
    entries = app.repo.log(ref, collection, stem)
    rows = [
        {"branch": e.branch, "seq": e.seq, "time": e.time, "author": e.author, "op": _OPS.get(e.op, e.op),
         "collection": e.collection, "id": e.stem + codec.SUFFIX if e.stem else None, "size": e.size}
        for e in itertools.islice(entries, limit or None)
    ]
    if as_json:
        echo_json(rows)
        return
    table([[f"{r['branch']}@{r['seq']}", when(r["time"]), r["author"], r["op"], r["collection"], r["id"] or "-"] for r in rows],
          ["VERSION", "TIME (UTC)", "AUTHOR", "OP", "COLLECTION", "ID"])


def _ejson(value: object) -> object:
    """A BSON value as JSON-compatible relaxed Extended JSON."""
    import json

    from bson import json_util

    from argonfs import codec

    return json.loads(json_util.dumps(value, json_options=codec.JSON_OPTIONS))


_MARKS = {"added": "+", "removed": "-", "modified": "~"}


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
        {"collection": ch.collection, "id": ch.stem + codec.SUFFIX, "change": ch.change,
         "fields": [{"path": f.path, "change": f.kind, "old": _ejson(f.old), "new": _ejson(f.new)} for f in ch.fields]}
        for ch in changes
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{_MARKS[row['change']]} {row['collection']}/{row['id']}")
        for f in row["fields"]:
            old_text = "(absent)" if f["change"] == "added" else json.dumps(f["old"], ensure_ascii=False)
            new_text = "(absent)" if f["change"] == "removed" else json.dumps(f["new"], ensure_ascii=False)
            click.echo(f"    {f['path']}: {old_text} -> {new_text}")


def register(main: click.Group) -> None:
    main.add_command(log)
    main.add_command(diff)
