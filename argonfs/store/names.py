"""Validation of branch, label and collection names and bundle ids (the rules live in
argonfs/snapshot.py, pure, so a remote mount checks names without the store), and parsing
of refs (the one order in which a name resolves is ``argonfs.snapshot.resolve_name``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from argonfs.errors import InvalidName
from argonfs.snapshot import (
    check_branch_name,
    check_bundle_id,
    check_collection_name,
    check_label_name,
    is_bundle_id,
    resolve_name,
)

__all__ = ["check_branch_name", "check_bundle_id", "check_collection_name", "check_label_name", "is_bundle_id", "parse_ref", "resolve_name"]


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
