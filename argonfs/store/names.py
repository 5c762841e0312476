"""Validation of branch, label and collection names and bundle ids, and parsing of refs
(the one order in which a name resolves is ``argonfs.snapshot.resolve_name``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argonfs.errors import InvalidName
from argonfs.snapshot import is_bundle_id, resolve_name

__all__ = ["check_branch_name", "check_bundle_id", "check_collection_name", "check_label_name", "is_bundle_id", "parse_ref", "resolve_name"]

MAX_NAME_BYTES = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_common(kind: str, name: str) -> None:
    if not name:
        raise InvalidName(f"{kind} name must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"{kind} name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    if "/" in name or _CONTROL.search(name):
        raise InvalidName(f"{kind} name {name!r} must not contain '/' or control characters")
    if name.startswith(".") or name.startswith("~"):
        raise InvalidName(f"{kind} name {name!r} must not start with '.' or '~'")


def check_bundle_id(bundle_id: str) -> str:
    if not is_bundle_id(bundle_id):
        raise InvalidName(f"{bundle_id[:40]!r} is not a bundle id (14 lowercase Crockford base32 characters)")
    return bundle_id


def _check_not_bundle_id(kind: str, name: str) -> None:
    if is_bundle_id(name):
        raise InvalidName(f"{kind} name {name!r} has the shape of a bundle id (14 lowercase Crockford base32 characters), which only bundles may have")


def check_branch_name(name: str) -> str:
    """Branch names: no '/', no '@', not empty, at most 100 bytes, no leading '.', not
    of a bundle id's shape."""
    _check_common("branch", name)
    if "@" in name:
        raise InvalidName(f"branch name {name!r} must not contain '@' (it introduces a time-travel ref)")
    _check_not_bundle_id("branch", name)
    return name


def check_label_name(name: str) -> str:
    _check_common("label", name)
    if "@" in name:
        raise InvalidName(f"label name {name!r} must not contain '@'")
    _check_not_bundle_id("label", name)
    return name


def check_collection_name(name: str) -> str:
    """MongoDB's rules (no '$', no NUL, not system.*) plus the filesystem's."""
    _check_common("collection", name)
    if "$" in name or name.startswith("system."):
        raise InvalidName(f"collection name {name!r} must not contain '$' or start with 'system.'")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidName(f"collection name {name!r} is too long")
    return name


@dataclass(frozen=True)
class RefSpec:
    """A parsed ref: ``name`` alone, ``name@seq``, or ``name@time`` (naive UTC)."""

    name: str
    seq: int | None = None
    time: datetime | None = None


def parse_ref(ref: str) -> RefSpec:
    """``NAME``, ``BRANCH@SEQ`` or ``BRANCH@TIME`` with TIME in ISO 8601
    (``2026-11-23``, ``2026-11-23T05:30``, ``2026-11-23T05:30:00.250+01:00``, ``...Z``);
    a time without a zone is UTC."""
    if not ref:
        raise InvalidName("a ref must not be empty")
    name, at, rest = ref.partition("@")
    if not at:
        return RefSpec(ref)
    if rest.isdigit():
        return RefSpec(name, int(rest))
    try:
        when = datetime.fromisoformat(rest)
    except ValueError:
        raise InvalidName(f"invalid ref {ref!r}: expected BRANCH@SEQ (a non-negative integer) or BRANCH@TIME (ISO 8601)") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return RefSpec(name, time=when)
