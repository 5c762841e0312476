"""Shared CLI plumbing: the lazily opened repository and output helpers."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

import click


@dataclass
class AppContext:
    mongo: str | None
    repo_name: str
    _repo: Any = field(default=None, repr=False)

    @property
    def repo(self) -> Any:
        """The Repository, opened on first use (this is where pymongo gets imported)."""
        return self.open_repo()

    def open_repo(self, *, check_format: bool = True) -> Any:
        if self._repo is None:
            from argonfs.store import Repository

            self._repo = Repository.open(self.mongo, self.repo_name, check_format=check_format)
        return self._repo


pass_app = click.make_pass_decorator(AppContext)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))


def when(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    text = value.strip().lower()
    unit = _UNITS.get(text[-1:])
    number = text[:-1] if unit else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration: use seconds or N followed by s, m, h or d (e.g. 90s, 30m, 2h)") from None
    if seconds < 0:
        raise click.BadParameter("a duration cannot be negative")
    return seconds
