"""The embedded MongoDB server: status, start, stop."""

from __future__ import annotations

import click

from argonfs.cli.common import echo_json, json_option


@click.group()
def server() -> None:
    """Manage the embedded SecantusDB server used when no --mongo URI is given."""


@server.command("status")
@json_option
def server_status(as_json: bool) -> None:
    """Say whether the embedded server runs, where, and with which pid."""
    from argonfs.config import data_dir
    from argonfs.store.db.embedded import server_info

    home = data_dir()
    info = server_info(home)
    if as_json:
        echo_json({"data_dir": str(home), "running": info is not None, **(info or {})})
    elif info is None:
        click.echo(f"no embedded server running for {home}")
    else:
        click.echo(f"embedded server pid {info['pid']} at {info['uri']} (data in {info['data']})")


@server.command("start")
def server_start() -> None:
    """Start the embedded server now (commands also start it on demand)."""
    from argonfs.config import data_dir
    from argonfs.store.db.embedded import ensure_server
    from argonfs.store.db.mongo import describe

    click.echo(describe(ensure_server(data_dir())))


@server.command("stop")
def server_stop() -> None:
    """Stop the embedded server of this data directory."""
    from argonfs.config import data_dir
    from argonfs.store.db.embedded import stop_server

    home = data_dir()
    click.echo("stopped" if stop_server(home) else f"no embedded server running for {home}")


def register(main: click.Group) -> None:
    main.add_command(server)
