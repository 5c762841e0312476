"""History: log."""

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


def register(main: click.Group) -> None:
    main.add_command(log)
