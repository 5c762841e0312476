"""label set / list / history / delete."""

from __future__ import annotations

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, table, when


@click.group()
def label() -> None:
    """Mutable names for bundles (like tags), with their history."""


@label.command("set")
@click.argument("name")
@click.argument("bundle_id", metavar="BUNDLE")
@pass_app
def set_(app: AppContext, name: str, bundle_id: str) -> None:
    """Point label NAME at BUNDLE (creating or moving it)."""
    app.repo.set_label(name, bundle_id)
    click.echo(f"{name} -> {bundle_id}")


@label.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    rows = app.repo.list_labels()
    if as_json:
        echo_json(rows)
        return
    table([[r["name"], r["bundle"], when(r["time"]), r["author"]] for r in rows], ["LABEL", "BUNDLE", "SET", "AUTHOR"])


@label.command("history")
@click.argument("name")
@json_option
@pass_app
def history(app: AppContext, name: str, as_json: bool) -> None:
    """Every bundle label NAME pointed at, newest first (deletions included)."""
    rows = app.repo.label_history(name)
    if as_json:
        echo_json(rows)
        return
    table([[when(r["time"]), r["op"], r["bundle"] or "-", r["author"]] for r in rows], ["TIME", "OP", "BUNDLE", "AUTHOR"])


@label.command("delete")
@click.argument("name")
@pass_app
def delete(app: AppContext, name: str) -> None:
    app.repo.delete_label(name)
    click.echo(f"deleted label {name!r}")


def register(main: click.Group) -> None:
    main.add_command(label)
