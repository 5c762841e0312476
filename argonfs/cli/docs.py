"""Documents and collections: ls, cat, put, rm, collection create/drop."""

from __future__ import annotations

import sys

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, when


def _stem(name: str) -> str:
    """Accept a document as its file name (``x.json``) or its stem (``x``)."""
    from argonfs import codec

    stem = codec.filename_to_stem(name)
    return stem if stem is not None else name


@click.command("ls")
@click.argument("ref")
@click.argument("collection", required=False)
@click.option("--limit", default=0, help="Show at most this many documents.")
@click.option("--after", default="", help="Start after this document name (paging).")
@json_option
@pass_app
def ls(app: AppContext, ref: str, collection: str | None, limit: int, after: str, as_json: bool) -> None:
    """List the collections of REF, or the documents of one collection."""
    repo = app.repo
    if collection is None:
        names = repo.collections(ref)
        if as_json:
            echo_json(names)
        else:
            for name in names:
                click.echo(name)
        return
    rows = []
    for n, entry in enumerate(repo.entries(ref, collection, after=_stem(after) if after else "")):
        if limit and n >= limit:
            break
        row = {"name": entry.stem + ".json", "size": entry.size, "seq": entry.seq, "time": entry.time, "author": entry.author, "hash": entry.hash}
        if as_json:
            rows.append(row)
        else:
            click.echo(f"{row['size']:>9}  {when(row['time'])}  {row['name']}")
    if as_json:
        echo_json(rows)


@click.command("cat")
@click.argument("ref")
@click.argument("collection")
@click.argument("doc_id", metavar="ID")
@click.option("--slot", type=click.IntRange(min=1), metavar="N", help="The version in slot N of REF's branch (the log's SLOT column).")
@pass_app
def cat(app: AppContext, ref: str, collection: str, doc_id: str, slot: int | None) -> None:
    """Print a document as Extended JSON.  ID is its file name, with or without .json.

    With --slot N, the version `argonfs log` lists in slot N, even one that a later
    version of the same batch hides at every seq (docs/history.md)."""
    if slot is None:
        document = app.repo.get(ref, collection, _stem(doc_id))
    else:
        document = app.repo.get_version(ref, collection, _stem(doc_id), slot)
    sys.stdout.buffer.write(document.rendered)
    sys.stdout.flush()


@click.command("put")
@click.argument("ref")
@click.argument("collection")
@click.argument("file", type=click.File("rb"))
@pass_app
def put(app: AppContext, ref: str, collection: str, file) -> None:
    """Write the document in FILE ('-' for stdin) to a branch.  A document without
    _id gets a new ObjectId."""
    from argonfs import codec

    doc = codec.parse(file.read())
    document = app.repo.put(ref, collection, doc)
    click.echo(f"{collection}/{document.stem}.json @ {document.seq}")


@click.command("rm")
@click.argument("ref")
@click.argument("collection")
@click.argument("doc_ids", metavar="ID...", nargs=-1, required=True)
@pass_app
def rm(app: AppContext, ref: str, collection: str, doc_ids: tuple[str, ...]) -> None:
    """Delete documents from a branch (other branches keep them)."""
    for doc_id in doc_ids:
        seq = app.repo.delete(ref, collection, _stem(doc_id))
        click.echo(f"deleted {collection}/{_stem(doc_id)}.json @ {seq}")


@click.group()
def collection() -> None:
    """Create empty collections and drop collections in a branch."""


@collection.command("create")
@click.argument("ref")
@click.argument("name")
@pass_app
def collection_create(app: AppContext, ref: str, name: str) -> None:
    seq = app.repo.create_collection(ref, name)
    click.echo(f"created collection {name!r} @ {seq}")


@collection.command("drop")
@click.argument("ref")
@click.argument("name")
@pass_app
def collection_drop(app: AppContext, ref: str, name: str) -> None:
    """Drop a collection in this branch only, in constant time."""
    seq = app.repo.drop_collection(ref, name)
    click.echo(f"dropped collection {name!r} @ {seq}")


def register(main: click.Group) -> None:
    for command in (ls, cat, put, rm, collection):
        main.add_command(command)
