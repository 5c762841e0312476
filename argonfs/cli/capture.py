"""capture: keep a branch in step with a MongoDB database (argonfs/capture/)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from argonfs.cli.common import AppContext, _jsonable, echo_json, json_option, pass_app, table, when


class CaptureGroup(click.Group):
    """``argonfs capture SOURCE ...`` runs a capture; ``argonfs capture list`` lists them:
    a first argument that is not a subcommand is the source of ``start``."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        start = self.commands["start"]
        formatter.write_paragraph()
        formatter.write_text("Options of 'argonfs capture SOURCE' (also 'argonfs capture start SOURCE'):")
        with click.Context(start, info_name="start", parent=ctx) as sub:
            start.format_options(sub, formatter)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group("capture", cls=CaptureGroup)
def capture() -> None:
    """Keep a branch in step with a MongoDB database through its change stream.

    \b
    argonfs capture SOURCE --branch B [-c COLLECTION]... [--once] [--resync] [--json]
    argonfs capture list [--json]

    SOURCE is mongodb://host/db (a whole database) or mongodb://host/db.collection.
    The source must be a replica set or a sharded cluster (change streams need one).
    """


@capture.command("start")
@click.argument("source")
@click.option("-b", "--branch", required=True, help="The branch to keep in step (created empty and protected if absent).")
@click.option("-c", "--collection", "collections", multiple=True, metavar="NAME", help="Only these collections of a whole-database source (repeatable).")
@click.option("--once", is_flag=True, help="Stop once caught up with the moment the capture started.")
@click.option("--resync", is_flag=True, help="Take a fresh copy, writing only what differs (after history was lost or the stream was invalidated).")
@click.option("--batch-size", default=1000, show_default=True, help="Most events per batch (a source transaction is never split).")
@click.option("--batch-time", default=0.2, show_default=True, help="Longest time a batch collects events, in seconds.")
@json_option
@pass_app
def start(
    app: AppContext, source: str, branch: str, collections: tuple[str, ...], once: bool, resync: bool, batch_size: int, batch_time: float, as_json: bool
) -> None:
    """Capture SOURCE into BRANCH, in the foreground, until SIGTERM or SIGINT (the batch
    in flight is finished) or, with --once, until caught up.  A first run copies the
    source and the events that arrived meanwhile as one commit.  Progress and lag go to
    stderr; with --json, a JSON line per batch goes to stdout."""
    from argonfs.capture import Capture, Options, parse_source

    if batch_size < 1 or batch_time <= 0:
        raise click.BadParameter("--batch-size and --batch-time must be positive")
    spec = parse_source(source, collections)
    progress = _CaptureProgress(spec.label, branch, as_json)
    job = Capture(app.repo, spec, branch, Options(batch_size, batch_time, once, resync), progress)
    click.echo(f"capture: {spec.label} -> branch {branch}", err=True)
    job.run()
    progress.summary()


class _CaptureProgress:
    """A JSON line per batch on stdout (--json), and a line on stderr at most every few
    seconds, and for every copy and retry."""

    EVERY = 5.0

    def __init__(self, shown: str, branch: str, as_json: bool) -> None:
        self.shown = shown
        self.branch = branch
        self.as_json = as_json
        self.events = self.batches = 0
        self.last = 0.0
        self.seen: dict[str, Any] = {}

    def __call__(self, report: dict[str, Any]) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(_jsonable({"branch": self.branch, **report})) + "\n")
            sys.stdout.flush()
        if report["event"] in ("batch", "copy"):
            self.events += report["events"]
            self.batches += 1
            self.seen = report
        at = time.monotonic()
        if report["event"] != "batch" or at - self.last >= self.EVERY:
            self.last = at
            click.echo(f"capture: {self._line(report)}", err=True)

    def _line(self, report: dict[str, Any]) -> str:
        if report["event"] == "retry":
            return f"{report['error']}; retrying in {report['retry_in_s']:.0f} s"
        what = "first copy committed" if report["event"] == "copy" else f"{self.events} events in {self.batches} batches so far"
        source_time = when(report["source_time"]) if report.get("source_time") else "-"
        slot = "nothing to write" if report["slot"] is None else f"slot {report['slot']}"
        return f"{what}, {slot}, source time {source_time}, lag {report['lag_s']:.2f} s"

    def summary(self) -> None:
        click.echo(f"capture: stopped after {self.events} events in {self.batches} batches", err=True)


@capture.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """Each capture: source (no credentials), branch, last applied event time, lag, state."""
    from argonfs.capture import status

    rows = status(app.repo)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no captures")
        return
    table(
        [
            [
                r["branch"],
                r["source"],
                r["state"],
                when(r["event_time"]) if r["event_time"] else "-",
                "-" if r["lag_s"] is None else f"{r['lag_s']:.2f} s",
                str(r["events"]),
            ]
            for r in rows
        ],
        ["BRANCH", "SOURCE", "STATE", "LAST EVENT", "LAG", "EVENTS"],
    )
    for r in rows:
        if r["message"] and not r["state"].startswith(("following", "copying")):
            click.echo(f"{r['branch']}: {r['message']}")


def register(main: click.Group) -> None:
    main.add_command(capture)
