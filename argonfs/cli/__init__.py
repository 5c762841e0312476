"""The ``argonfs`` command line.  One module per command group; heavy modules are
imported inside the commands so ``argonfs --help`` stays fast."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from argonfs.cli.common import AppContext


class ArgonGroup(click.Group):
    """Turns argonfs errors into one line on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from argonfs.errors import ArgonError

        try:
            return super().invoke(ctx)
        except ArgonError as exc:
            click.echo(f"argonfs: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=ArgonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mongo", envvar="ARGONFS_MONGO_URI", metavar="URI", help="MongoDB URI [env ARGONFS_MONGO_URI]; default: the embedded server.")
@click.option("--repo", envvar="ARGONFS_REPO", default="argonfs", show_default=True, metavar="NAME", help="Repository (database) name [env ARGONFS_REPO].")
@click.option("--debug", is_flag=True, help="Log debug messages to stderr.")
@click.version_option(package_name="argonfs")
@click.pass_context
def main(ctx: click.Context, mongo: str | None, repo: str, debug: bool) -> None:
    """Git-like branches and immutable bundles of MongoDB documents, served as files.

    REF arguments accept a branch, BRANCH@SEQ, a bundle id or a label.
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx.obj = AppContext(mongo, repo)


from argonfs.cli import branch, bundle, capture, docs, history, label, ml, mount, remote, repo, serve, server  # noqa: E402  (registers commands)

for module in (repo, branch, bundle, label, docs, history, remote, capture, mount, serve, server, ml):
    module.register(main)
