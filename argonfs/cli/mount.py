"""argonfs mount / umount."""

from __future__ import annotations

import logging
import os
import sys

import click

from argonfs.cli.common import AppContext, pass_app


@click.command()
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("--foreground", "-f", is_flag=True, help="Serve in the foreground (containers); default: return once mounted.")
@click.option("--ready-file", type=click.Path(dir_okay=False), help="Write this file once the mount answers; removed at unmount.")
@click.option("-o", "options", multiple=True, metavar="OPTS", help="FUSE mount options, comma-separated (e.g. allow_other, ro).")
@click.option("--threads", default=16, show_default=True, help="Worker threads talking to MongoDB.")
@click.option("--read-log", is_flag=True, help="Record which user opened which document, when (see 'argonfs readlog').")
@pass_app
@click.pass_context
def mount(
    ctx: click.Context, app: AppContext, mountpoint: str, foreground: bool, ready_file: str | None, options: tuple[str, ...], threads: int, read_log: bool
) -> None:
    """Mount the repository at MOUNTPOINT.

    \b
    MOUNTPOINT/branches/BRANCH/COLLECTION/ID.json   read-write
    MOUNTPOINT/branches/BRANCH@SEQ/...              read-only, not listed
    MOUNTPOINT/bundles/BUNDLE/...                   read-only
    MOUNTPOINT/labels/LABEL -> ../bundles/BUNDLE

    Returns once the mount answers and keeps serving in the background (log in the
    data directory, under mounts/); SIGTERM or 'argonfs umount' unmounts.
    """
    from argonfs import daemon

    debug = ctx.parent is not None and ctx.parent.params.get("debug")
    config = daemon.MountConfig(mountpoint, app.mongo, app.repo_name, ready_file, list(options), bool(debug), threads, read_log)
    if foreground:
        logging.getLogger().setLevel(logging.DEBUG if debug else logging.INFO)
        notify = os.environ.pop("ARGONFS_NOTIFY_FD", None)
        daemon.serve(config, int(notify) if notify else None)
        return
    argv = [sys.executable, "-m", "argonfs", *(["--debug"] if debug else []), "mount", "--foreground", mountpoint, "--threads", str(threads)]
    if ready_file:
        argv += ["--ready-file", ready_file]
    if read_log:
        argv.append("--read-log")
    for opt in options:
        argv += ["-o", opt]
    pid = daemon.start(config, argv)
    click.echo(f"mounted {app.repo_name} at {mountpoint} (daemon pid {pid}, log {daemon.log_file(mountpoint)})", err=True)


@click.command()
@click.argument("mountpoint", type=click.Path(file_okay=False))
def umount(mountpoint: str) -> None:
    """Unmount MOUNTPOINT and wait for its daemon to finish."""
    from argonfs import daemon

    daemon.umount(mountpoint)


def register(main: click.Group) -> None:
    main.add_command(mount)
    main.add_command(umount)
