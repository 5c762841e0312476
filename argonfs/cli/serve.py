"""argonfs serve: the web console and the HTTP API (docs/console.md); serve token."""

from __future__ import annotations

import click

from argonfs.cli.common import AppContext, pass_app


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; any but loopback needs the token for every request.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on (0: any free port, said at start).")
@click.option("--repo", "repo_name", metavar="NAME", help="Repository to serve (default: the global --repo).")
@click.option("--mongo", metavar="URI", help="MongoDB URI (default: the global --mongo, else the embedded server).")
@pass_app
@click.pass_context
def serve(ctx: click.Context, app: AppContext, host: str, port: int, repo_name: str | None, mongo: str | None) -> None:
    """Serve the web console at / and the HTTP API at /api/v1 until SIGINT or SIGTERM.

    Reads are open on loopback; writes need `Authorization: Bearer TOKEN` with the token
    `argonfs serve token` prints."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401

        from argonfs.console import serving
    except ImportError as exc:
        raise click.ClickException(f"argonfs serve needs the console extra ({exc.name or exc} is missing): pip install 'argonfs[console]'") from None

    repo = AppContext(mongo or app.mongo, repo_name or app.repo_name).repo
    repo.info()  # a missing repository or an unreachable server fails here, in one line
    listening = serving.listen(host, port)
    click.echo(f"argonfs: serving repository {repo.db.name!r} ({repo.where}) at {listening.url}", err=True)
    click.echo(f"argonfs: {listening.notice}", err=True)
    serving.run(repo, listening)


@serve.command("token")
def token() -> None:
    """Print the token writes need (made on first use, kept 0600 in the data directory)."""
    from argonfs.console.auth import ensure_token

    click.echo(ensure_token().secret)


def register(main: click.Group) -> None:
    main.add_command(serve)
