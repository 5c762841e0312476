"""Names: the rules for branch, label and collection names and bundle ids, the one
order in which a plain name resolves (``resolve_name``), and parsing of refs
(``NAME``, ``BRANCH@SEQ``, ``BRANCH@TIME``).

Pure (no I/O, no pymongo, like codec): the store refuses names that break these rules,
a remote mount skips them, and both import them from here.  docs/cli.md, "Names and
refs", says the same for users."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from argonfs.errors import InvalidName

T = TypeVar("T")


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


#: a bundle id's shape (model.new_bundle_id): 14 lowercase Crockford base32 characters
_BUNDLE_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{14}")


def is_bundle_id(name: str) -> bool:
    """Whether a name has a bundle id's shape (14 lowercase Crockford base32 characters).
    Only bundles have such names: branches and labels are refused them."""
    return _BUNDLE_ID.fullmatch(name) is not None


# The rules for names (the store refuses others; a remote mount skips them): pure, so the
# daemon of a remote mount checks names without importing the store (and pymongo).

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


def _check_ref_name(kind: str, name: str, at: str = "") -> str:
    """The rules a name a ref can start with keeps: the common ones, no '@' (``at`` says
    why), and not a bundle id's shape."""
    _check_common(kind, name)
    if "@" in name:
        raise InvalidName(f"{kind} name {name!r} must not contain '@'{at}")
    _check_not_bundle_id(kind, name)
    return name


def check_branch_name(name: str) -> str:
    """Branch names: no '/', no '@', not empty, at most 100 bytes, no leading '.', not
    of a bundle id's shape."""
    return _check_ref_name("branch", name, " (it introduces a time-travel ref)")


def check_label_name(name: str) -> str:
    return _check_ref_name("label", name)


def check_collection_name(name: str) -> str:
    """MongoDB's rules (no '$', no NUL, not system.*) plus the filesystem's."""
    _check_common("collection", name)
    if "$" in name or name.startswith("system."):
        raise InvalidName(f"collection name {name!r} must not contain '$' or start with 'system.'")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidName(f"collection name {name!r} is too long")
    return name


def resolve_name(
    name: str,
    *,
    bundle: Callable[[str], T | None],
    branch: Callable[[str], T | None],
    label: Callable[[str], T | None],
) -> T | None:
    """The one order in which a plain name (no ``@``) resolves, first match wins, in the
    store, the mount, the API, the loaders and a remote (which has no branches):

    1. a bundle id, so that an id always means its bundle (asked only of a name of a
       bundle id's shape);
    2. a branch (a pull of label L writes branch L: L names the writable branch);
    3. a label (its current bundle).

    Branch and label names cannot have a bundle id's shape (``check_branch_name``,
    ``check_label_name``), so only a branch made before that rule can share a name with
    a bundle, and the bundle wins.  Each lookup returns None for "no such name"."""
    for lookup in (bundle, branch, label) if is_bundle_id(name) else (branch, label):
        found = lookup(name)
        if found is not None:
            return found
    return None
