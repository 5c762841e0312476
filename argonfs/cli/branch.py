"""branch create / list / delete."""

from __future__ import annotations

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, table, when


@click.group()
def branch() -> None:
    """Create, list, delete and protect branches."""


@branch.command("create")
@click.argument("name")
@click.option("--from", "from_ref", metavar="REF", help="Fork from this ref (default: the default branch's head).")
@pass_app
def create(app: AppContext, name: str, from_ref: str | None) -> None:
    """Create branch NAME in constant time (no document is copied)."""
    b = app.repo.create_branch(name, from_ref)
    click.echo(f"created branch {b.name!r} from {from_ref or b.parent_name}@{b.fork_seq}")


@branch.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List branches with their parent and fork point."""
    rows = [
        {
            "name": b.name,
            "parent": b.parent_name,
            "fork_seq": b.fork_seq,
            "head": app.repo.head(b.name),
            "created": b.created,
            "author": b.author,
            "protected": b.protected,
        }
        for b in app.repo.list_branches(protection=True)
    ]
    if as_json:
        echo_json(rows)
        return
    table(
        [
            [r["name"], r["head"], f"{r['parent']}@{r['fork_seq']}" if r["parent"] else "-", "yes" if r["protected"] else "-", when(r["created"]), r["author"]]
            for r in rows
        ],
        ["BRANCH", "HEAD", "FORKED FROM", "PROTECTED", "CREATED", "AUTHOR"],
    )


@branch.command("protect")
@click.argument("name")
@pass_app
def protect(app: AppContext, name: str) -> None:
    """Refuse direct writes to NAME (put, rm, import, collections, the mount) in every
    process; merges into it and reverts of it are still allowed."""
    changed = app.repo.protect_branch(name)
    click.echo(f"branch {name!r} is {'now' if changed else 'already'} protected")


@branch.command("unprotect")
@click.argument("name")
@pass_app
def unprotect(app: AppContext, name: str) -> None:
    """Allow direct writes to NAME again."""
    changed = app.repo.unprotect_branch(name)
    click.echo(f"branch {name!r} is {'no longer' if changed else 'not'} protected")


@branch.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete even the default branch or a branch others fork from.")
@pass_app
def delete(app: AppContext, name: str, force: bool) -> None:
    """Delete branch NAME.  Its bundles and the branches forked from it keep working."""
    app.repo.delete_branch(name, force=force)
    click.echo(f"deleted branch {name!r}")


def register(main: click.Group) -> None:
    main.add_command(branch)
