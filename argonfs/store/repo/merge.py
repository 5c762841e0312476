"""Three-way merge of documents, field by field.  Pure: no I/O.

``merge_document(base, ours, theirs)`` takes the three versions of one document (``None``
where the document does not exist) and returns the merged document (``None``: deleted)
and the conflicts.  The rules, applied at the document and then at every field:

* both sides equal: that value;
* one side unchanged from the base: the other side's value (a change, an addition or a
  deletion);
* both changed differently: objects on both sides merge key by key (so changes to
  different fields combine); anything else is a conflict at that path.

Conflicts at the document level: deleted on one side and modified on the other
(``delete-modify``), and added on both sides with different content (``add-add``).
Within a document: the same field changed differently (``field``).  The merge of the
repository (dropped collections, merge bases) builds on this; see docs/history.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MISSING: Any = object()

FIELD, DELETE_MODIFY, ADD_ADD, DROP_MODIFY = "field", "delete-modify", "add-add", "drop-modify"


@dataclass(frozen=True)
class MergeConflict:
    kind: str
    path: str
    base: Any = None
    ours: Any = None
    theirs: Any = None


def _same(a: Any, b: Any) -> bool:
    """Equal as BSON values: 1 and 1.0 (or True) are different values."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _merge_value(base: Any, ours: Any, theirs: Any, path: str, conflicts: list[MergeConflict]) -> Any:
    if _same(ours, theirs):
        return ours
    if _same(ours, base):
        return theirs
    if _same(theirs, base):
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return _merge_object(base if isinstance(base, dict) else {}, ours, theirs, path, conflicts)
    conflicts.append(MergeConflict(FIELD, path or "$", _show(base), _show(ours), _show(theirs)))
    return ours


def _merge_object(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any], path: str, conflicts: list[MergeConflict]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in [*ours, *(k for k in theirs if k not in ours), *(k for k in base if k not in ours and k not in theirs)]:
        value = _merge_value(base.get(key, MISSING), ours.get(key, MISSING), theirs.get(key, MISSING), _join(path, key), conflicts)
        if value is not MISSING:
            merged[key] = value
    return merged


def _show(value: Any) -> Any:
    return None if value is MISSING else value


def merge_document(
    base: dict[str, Any] | None, ours: dict[str, Any] | None, theirs: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, list[MergeConflict]]:
    """The merged document (None: absent) and the conflicts; on conflict the merged
    document keeps our side at each conflicting path."""
    if ours is not None and theirs is not None and _same(ours, theirs):
        return ours, []
    if base is not None and ours is not None and _same(ours, base):
        return theirs, []
    if base is not None and theirs is not None and _same(theirs, base):
        return ours, []
    if ours is None and theirs is None:
        return None, []
    if base is None and ours is None:
        return theirs, []
    if base is None and theirs is None:
        return ours, []
    if base is None:
        return ours, [MergeConflict(ADD_ADD, "$", None, ours, theirs)]
    if ours is None or theirs is None:
        return ours, [MergeConflict(DELETE_MODIFY, "$", base, ours, theirs)]
    conflicts: list[MergeConflict] = []
    merged = _merge_object(base, ours, theirs, "", conflicts)
    return merged, conflicts
