"""Differences between two snapshots, and between two versions of a document.

``changed_keys`` finds what can differ between two views from their histories: when the
views share a layer (one is forked from the other, or both from a common ancestor), only
records written above the common point can make them differ, and those are read by slot
id, so the cost is proportional to the changes since the common ancestor, not to the
size of the collections.  A collection marker (drop or create) among those changes makes
the whole collection a candidate, which is then compared by listing both sides.

``field_diff`` is pure: the JSON paths where two documents differ, with old and new values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bson.objectid import ObjectId

from argonfs.store.db.mongo import Coll
from argonfs.store.engine import lookup
from argonfs.store.engine import versions as v

ADDED, REMOVED, MODIFIED = "added", "removed", "modified"

_MISSING = object()


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any = None
    new: Any = None
    kind: str = MODIFIED  # or ADDED / REMOVED (the field)


@dataclass
class DocChange:
    collection: str
    stem: str
    change: str  # ADDED, REMOVED or MODIFIED
    fields: list[FieldChange] = field(default_factory=list)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def field_diff(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Where ``new`` differs from ``old``: into objects by key, into arrays of equal
    length by index; anything else that differs is one change at its path."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in old:
            if key not in new:
                out.append(FieldChange(_join(path, key), old[key], None, REMOVED))
            elif old[key] != new[key] or type(old[key]) is not type(new[key]):
                out.extend(field_diff(old[key], new[key], _join(path, key)))
        out.extend(FieldChange(_join(path, key), None, new[key], ADDED) for key in new if key not in old)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b or type(a) is not type(b):
                out.extend(field_diff(a, b, _join(path, i)))
        return out
    if old == new and type(old) is type(new):
        return []
    return [FieldChange(path or "$", old, new)]


def shared_point(a: v.Chain, b: v.Chain) -> tuple[int, int, int] | None:
    """(index in a, index in b, base seq) of the nearest layer both chains read."""
    b_index = {bid: i for i, (bid, _) in enumerate(b)}
    for i, (bid, limit_a) in enumerate(a):
        j = b_index.get(bid)
        if j is not None:
            limit_b = b[j][1]
            assert limit_a is not None and limit_b is not None, "pin views before diffing"
            return i, j, min(limit_a, limit_b)
    return None


def _records(versions: Coll, bid: ObjectId, top: int, floor: int) -> Iterator[dict[str, Any]]:
    for rec in lookup.slots_desc(versions, bid, top):
        if rec["s"] <= floor:
            return
        yield rec


def changed_keys(versions: Coll, a: v.Chain, b: v.Chain, collection: str | None) -> tuple[dict[str, set[str]], set[str]] | None:
    """Keys that may differ between pinned chains ``a`` and ``b``, per collection, and the
    collections a marker makes wholly uncertain; None when they share no history."""
    shared = shared_point(a, b)
    if shared is None:
        return None
    i, j, base = shared
    keys: dict[str, set[str]] = {}
    whole: set[str] = set()
    spans = [(bid, limit, 0) for bid, limit in a[:i]] + [(bid, limit, 0) for bid, limit in b[:j]]
    spans += [(a[i][0], a[i][1], base), (b[j][0], b[j][1], base)]
    for bid, top, floor in spans:
        for rec in _records(versions, bid, top or 0, floor):
            c = rec["c"]
            if c == v.COMMITS or (collection is not None and c != collection):
                continue
            if rec["k"] == v.MARKER_KEY:
                whole.add(c)
            else:
                keys.setdefault(c, set()).add(rec["k"])
    return keys, whole


#: one side's records above the shared point: collection -> name -> the newest visible
#: record of it there (a put or a delete), without its body
Overlay = dict[str, dict[str, dict[str, Any]]]


@dataclass
class Above:
    """What two pinned chains hold above their shared point: each side's newest record
    of every name written there, the collections a marker (or a record of another
    kind) makes wholly uncertain, and the chain of the shared snapshot itself, which
    both sides read for every other name."""

    a: Overlay
    b: Overlay
    whole: set[str]
    shared: v.Chain


def _overlay(versions: Coll, spans: list[tuple[ObjectId, int | None, int]], collection: str | None, whole: set[str]) -> Overlay:
    """Layers nearest first, each read newest slot first: the first visible record of
    a name is the one the side reads (as ``lookup`` picks the highest slot)."""
    out: Overlay = {}
    for bid, top, floor in spans:
        for rec in _records(versions, bid, top or 0, floor):
            c = rec["c"]
            if c == v.COMMITS or (collection is not None and c != collection):
                continue
            if rec["k"] == v.MARKER_KEY or rec.get("op") not in (v.PUT, v.DELETE):
                whole.add(c)
            else:
                out.setdefault(c, {}).setdefault(rec["k"], rec)
    return out


def above_shared(versions: Coll, a: v.Chain, b: v.Chain, collection: str | None) -> Above | None:
    """``changed_keys`` with each side's records kept: None when the chains share no
    history.  Costs the same reads (the records above the shared point, by slot id)."""
    shared = shared_point(a, b)
    if shared is None:
        return None
    i, j, base = shared
    whole: set[str] = set()
    over_a = _overlay(versions, [(bid, limit, 0) for bid, limit in a[:i]] + [(a[i][0], a[i][1], base)], collection, whole)
    over_b = _overlay(versions, [(bid, limit, 0) for bid, limit in b[:j]] + [(b[j][0], b[j][1], base)], collection, whole)
    return Above(over_a, over_b, whole, ((a[i][0], base), *a[i + 1 :]))


def chunks_by_collection(changes: list[DocChange], size: int) -> Iterator[tuple[str, list[DocChange]]]:
    """Changes grouped by collection, in chunks of at most ``size`` (one lookup each)."""
    groups: dict[str, list[DocChange]] = {}
    for ch in changes:
        groups.setdefault(ch.collection, []).append(ch)
    for collection, group in groups.items():
        for start in range(0, len(group), size):
            yield collection, group[start : start + size]
