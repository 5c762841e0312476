"""argonfs serve: the web console and the HTTP API (docs/console.md); serve token."""

from __future__ import annotations

import os

import click

from argonfs.cli.common import AppContext, pass_app
from argonfs.cli.mount import remote_options
from argonfs.errors import ArgonError


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; any but loopback needs the token for every request.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on (0: any free port, said at start).")
@click.option("--repo", "repo_name", metavar="NAME", help="Repository to serve (default: the global --repo).")
@click.option("--mongo", metavar="URI", help="MongoDB URI (default: the global --mongo, else the embedded server).")
@remote_options
@click.option("--read-log", is_flag=True, help="Record who read which document through the API and the console (see 'argonfs readlog'), as mounts do.")
@pass_app
@click.pass_context
def serve(
    ctx: click.Context, app: AppContext, host: str, port: int, repo_name: str | None, mongo: str | None, remote: str | None, cache_size: int, read_log: bool
) -> None:
    """Serve the web console at / and the HTTP API at /api/v1 until SIGINT or SIGTERM.

    Reads are open on loopback; writes need `Authorization: Bearer TOKEN` with the token
    `argonfs serve token` prints.  With --remote, a remote's bundles and labels,
    read-only, with no MongoDB (every write is 403 read_only)."""
    if ctx.invoked_subcommand is not None:
        return
    if remote is not None:
        _check_remote_options(ctx, remote, repo_name, mongo)
        if read_log:
            raise click.UsageError("a remote keeps no read log (it is stored in MongoDB): drop --read-log")
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import multipart  # type: ignore[import-untyped]  # noqa: F401
        import uvicorn  # noqa: F401

        from argonfs.console import serving
    except ImportError as exc:
        raise click.ClickException(f"argonfs serve needs the console extra ({exc.name or exc} is missing): pip install 'argonfs[console]'") from None

    if remote is not None:
        _serve_remote(host, port, remote, cache_size)
        return
    repo = AppContext(mongo or app.mongo, repo_name or app.repo_name).repo
    repo.info()  # a missing repository or an unreachable server fails here, in one line
    listening = serving.listen(host, port)
    click.echo(f"argonfs: serving repository {repo.db.name!r} ({repo.where}) at {listening.url}", err=True)
    click.echo(f"argonfs: {listening.notice}", err=True)
    if read_log:
        click.echo("argonfs: recording reads in the read log ('argonfs readlog' shows them)", err=True)
    serving.run(repo, listening, read_log=read_log)


def _check_remote_options(ctx: click.Context, remote: str, repo_name: str | None, mongo: str | None) -> None:
    """--remote serves no repository: a --mongo or --repo given with it (here or before
    `serve`) is a mistake; ARGONFS_MONGO_URI and ARGONFS_REPO in the environment are
    ignored, as by `argonfs mount --remote`."""
    given = [f"--{name}" for name, value in (("mongo", mongo), ("repo", repo_name)) if value is not None]
    parent = ctx.parent
    if parent is not None:
        given += [f"--{name}" for name in ("mongo", "repo") if parent.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"--remote serves a remote without MongoDB; it cannot be given with {' or '.join(sorted(set(given)))}")
    from argonfs.remote.objects import check_url

    try:
        check_url(remote)
    except ArgonError as exc:
        raise click.BadParameter(str(exc), param_hint="--remote") from None
    plain = "://" not in remote and not remote.startswith(("/", "."))
    if plain and not os.path.isdir(remote):
        raise click.BadParameter(
            f"{remote!r} is neither a URL nor a directory; --remote takes a URL, not a remote's name "
            "(names are kept in MongoDB: 'argonfs remote list' shows their URLs)",
            param_hint="--remote",
        )


def _serve_remote(host: str, port: int, url: str, cache_size: int) -> None:
    from argonfs.console import serving
    from argonfs.console.remote import create_remote_app
    from argonfs.remote.snapshots import RemoteCatalog

    catalog = RemoteCatalog.open(url, cache_size)  # a missing, unreachable or foreign remote fails here, in one line
    try:
        listening = serving.listen(host, port)
        click.echo(f"argonfs: serving remote {catalog.url} read-only (no MongoDB) at {listening.url}", err=True)
        notice = listening.notice if listening.policy.reads_need_token else "loopback only; every write answers 403 read_only"
        click.echo(f"argonfs: {notice}", err=True)
        serving.serve_app(create_remote_app(catalog, listening.policy), listening)
    finally:
        catalog.close()


@serve.command("token")
def token() -> None:
    """Print the token writes need (made on first use, kept 0600 in the data directory)."""
    from argonfs.console.auth import ensure_token

    click.echo(ensure_token().secret)


def register(main: click.Group) -> None:
    main.add_command(serve)
