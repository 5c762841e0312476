"""argonfs mount / umount."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from argonfs.cli.common import AppContext, pass_app

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes of a size as people write it: ``1073741824``, ``512M``, ``2G``, ``1.5GiB``
    (binary units: K is 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size (e.g. 512M, 2G, or bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


class Size(click.ParamType):
    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def remote_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--remote URL`` and ``--cache-size``: what ``mount`` and ``serve`` take to serve a
    remote without MongoDB."""
    command = click.option(
        "--cache-size",
        envvar="ARGONFS_CACHE_SIZE",
        type=Size(),
        default="1G",
        show_default=True,
        help="With --remote: bytes of remote objects kept on local disk, shared by the mounts and consoles of the remote, e.g. 512M, 2G [env ARGONFS_CACHE_SIZE].",
    )(command)
    return click.option(
        "--remote",
        envvar="ARGONFS_REMOTE",
        metavar="URL",
        help="Serve this remote's bundles and labels read-only, without MongoDB: gs://BUCKET[/PREFIX], s3://BUCKET[/PREFIX], file:///PATH or a path [env ARGONFS_REMOTE].",
    )(command)


@click.command()
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("--foreground", "-f", is_flag=True, help="Serve in the foreground (containers); default: return once mounted.")
@click.option("--ready-file", type=click.Path(dir_okay=False), help="Write this file once the mount answers; removed at unmount.")
@click.option("-o", "options", multiple=True, metavar="OPTS", help="FUSE mount options, comma-separated (e.g. allow_other, ro).")
@click.option("--threads", default=16, show_default=True, help="Worker threads talking to MongoDB or the remote.")
@click.option("--read-log", is_flag=True, help="Record which user opened which document, when (see 'argonfs readlog').")
@click.option("--nonempty", is_flag=True, help="Mount over a directory that has files (they are hidden until unmount); refused otherwise.")
@remote_options
@pass_app
@click.pass_context
def mount(
    ctx: click.Context,
    app: AppContext,
    mountpoint: str,
    foreground: bool,
    ready_file: str | None,
    options: tuple[str, ...],
    threads: int,
    read_log: bool,
    nonempty: bool,
    remote: str | None,
    cache_size: int,
) -> None:
    """Mount the repository (or, with --remote, a remote) at MOUNTPOINT.

    \b
    MOUNTPOINT/branches/BRANCH/COLLECTION/ID.json   read-write
    MOUNTPOINT/branches/BRANCH@SEQ/...              read-only, not listed
    MOUNTPOINT/bundles/BUNDLE/...                   read-only
    MOUNTPOINT/labels/LABEL -> ../bundles/BUNDLE

    With --remote, the remote's bundles and labels, read-only, with no MongoDB;
    /branches is empty.  Returns once the mount answers and keeps serving in the
    background (log in the data directory, under mounts/; 'argonfs log --mount
    MOUNTPOINT' prints its refusals); SIGTERM or 'argonfs umount' unmounts.  A
    directory with files in it is refused unless --nonempty.
    """
    from argonfs import daemon

    if remote is not None:
        from argonfs.remote.objects import check_url

        if read_log:
            raise click.UsageError("--read-log needs MongoDB; a --remote mount keeps no read log")
        check_url(remote)
    debug = ctx.parent is not None and ctx.parent.params.get("debug")
    config = daemon.MountConfig(mountpoint, app.mongo, app.repo_name, ready_file, list(options), bool(debug), threads, read_log, remote, cache_size, nonempty)
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
    if nonempty:
        argv.append("--nonempty")
    if remote is not None:
        argv += ["--remote", remote, "--cache-size", str(cache_size)]
    for opt in options:
        argv += ["-o", opt]
    pid = daemon.start(config, argv)
    what = f"remote {remote}" if remote is not None else app.repo_name
    click.echo(f"mounted {what} at {mountpoint} (daemon pid {pid}, log {daemon.log_file(mountpoint)}; refusals: argonfs log --mount {mountpoint})", err=True)


@click.command()
@click.argument("mountpoint", type=click.Path(file_okay=False))
def umount(mountpoint: str) -> None:
    """Unmount MOUNTPOINT and wait for its daemon to finish."""
    from argonfs import daemon

    daemon.umount(mountpoint)


def register(main: click.Group) -> None:
    main.add_command(mount)
    main.add_command(umount)
