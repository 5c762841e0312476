"""bundle create / list / show."""

from __future__ import annotations

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, table, when


def _row(b) -> dict:
    return {"id": b.id, "branch": b.branch, "seq": b.seq, "message": b.message, "author": b.author, "time": b.time}


@click.group()
def bundle() -> None:
    """Immutable snapshots of a branch."""


@bundle.command("create")
@click.argument("ref")
@click.option("-m", "--message", required=True, help="What this snapshot is.")
@click.option("--label", "-l", default=None, help="Also point this label at the new bundle.")
@json_option
@pass_app
def create(app: AppContext, ref: str, message: str, label: str | None, as_json: bool) -> None:
    """Freeze REF (usually a branch) as a bundle; prints the bundle id."""
    b = app.repo.create_bundle(ref, message, label=label)
    if as_json:
        echo_json(_row(b))
    else:
        click.echo(b.id)


@bundle.command("list")
@click.option("--limit", default=0, help="Show at most this many (newest first).")
@json_option
@pass_app
def list_(app: AppContext, limit: int, as_json: bool) -> None:
    """List bundles, newest first."""
    rows = [_row(b) for b in app.repo.list_bundles(limit)]
    if as_json:
        echo_json(rows)
        return
    table([[r["id"], f"{r['branch']}@{r['seq']}", when(r["time"]), r["author"], r["message"]] for r in rows], ["BUNDLE", "FROM", "TIME", "AUTHOR", "MESSAGE"])


@bundle.command("show")
@click.argument("bundle_id")
@json_option
@pass_app
def show(app: AppContext, bundle_id: str, as_json: bool) -> None:
    """Show one bundle, its collections and the labels that point at it."""
    repo = app.repo
    b = repo.bundle(bundle_id)
    row = _row(b)
    row["collections"] = repo.collections(b.id)
    row["labels"] = [lab["name"] for lab in repo.list_labels() if lab["bundle"] == b.id]
    if as_json:
        echo_json(row)
        return
    for key in ("id", "branch", "seq", "message", "author"):
        click.echo(f"{key + ':':<13}{row[key]}")
    click.echo(f"{'time:':<13}{when(b.time)}")
    click.echo(f"{'collections:':<13}{', '.join(row['collections']) or '-'}")
    click.echo(f"{'labels:':<13}{', '.join(row['labels']) or '-'}")


def register(main: click.Group) -> None:
    main.add_command(bundle)
