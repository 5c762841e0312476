"""Change events of a source database, as argonfs reads them; pure.

What a source is (``mongodb://host/db`` or ``mongodb://host/db.collection``, shown
without credentials), and how an update event's ``updateDescription`` turns the
document before it into the document right after it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from argonfs.errors import InvalidDocument


@dataclass(frozen=True)
class SourceSpec:
    """What a capture follows: a database, or one collection of it, optionally only some
    of a database's collections (``-c``)."""

    uri: str
    db: str
    collection: str | None
    only: tuple[str, ...] = ()
    #: the URI with no user, password or options: what ``capture list`` shows
    shown: str = ""

    @property
    def label(self) -> str:
        """The source as a user names it: the shown URI and its ``-c`` options."""
        return self.shown + "".join(f" -c {c}" for c in self.only)

    def wants(self, collection: str) -> bool:
        if collection.startswith("system."):
            return False
        if self.collection is not None:
            return collection == self.collection
        return not self.only or collection in self.only


def parse_source(uri: str, only: Sequence[str] = ()) -> SourceSpec:
    from pymongo import uri_parser

    try:
        parsed = uri_parser.parse_uri(uri)
    except Exception as exc:  # pymongo raises InvalidURI, ValueError or ConfigurationError
        raise InvalidDocument(f"not a MongoDB URI: {exc}") from None
    db = parsed.get("database")
    if not db:
        raise InvalidDocument("the source must name a database: mongodb://host/DB or mongodb://host/DB.COLLECTION")
    collection = parsed.get("collection")
    if collection and only:
        raise InvalidDocument("-c/--collection only applies to a whole-database source (mongodb://host/DB)")
    scheme = "mongodb+srv" if uri.startswith("mongodb+srv://") else "mongodb"
    hosts = ",".join(f"{h}:{p}" if p else h for h, p in parsed["nodelist"]) if scheme == "mongodb" else uri.split("@")[-1].split("/")[0]
    shown = f"{scheme}://{hosts}/{db}" + (f".{collection}" if collection else "")
    return SourceSpec(uri, db, collection or None, tuple(only), shown)


def tx_key(event: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """The source transaction an event belongs to (None: not in a transaction)."""
    if "txnNumber" not in event or "lsid" not in event:
        return None
    return (repr(event["lsid"]), event["txnNumber"])


def apply_update(before: Mapping[str, Any], description: Mapping[str, Any]) -> dict[str, Any]:
    """The document right after an update, from the document right before it and the
    event's ``updateDescription``: arrays truncated, then fields set, then fields removed,
    each a dotted path (a numeric part indexes an array).  Paths with dots or numbers
    inside a field's own name come with ``disambiguatedPaths``, used when present."""
    doc = copy.deepcopy(dict(before))
    paths = description.get("disambiguatedPaths") or {}

    def parts(path: str) -> list[str | int]:
        given = paths.get(path)
        return list(given) if given is not None else list(path.split("."))

    for t in description.get("truncatedArrays") or []:
        target = _walk(doc, parts(t["field"]), create=False)
        if isinstance(target, list):
            del target[int(t["newSize"]) :]
    for path, value in (description.get("updatedFields") or {}).items():
        *head, last = parts(path)
        _set(_walk(doc, head, create=True), last, copy.deepcopy(value))
    for path in description.get("removedFields") or []:
        *head, last = parts(path)
        parent = _walk(doc, head, create=False)
        if isinstance(parent, dict):
            parent.pop(str(last), None)
        elif isinstance(parent, list) and _index(last) is not None and _index(last) < len(parent):  # type: ignore[operator]
            parent[_index(last)] = None  # type: ignore[index]  # $unset of an element leaves null, as MongoDB does
    return doc


def _index(part: str | int) -> int | None:
    if isinstance(part, int):
        return part
    return int(part) if part.isdigit() else None


def _walk(doc: Any, parts: Sequence[str | int], *, create: bool) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, list) and _index(part) is not None:
            i = _index(part)
            assert i is not None
            while create and len(node) <= i:
                node.append(None)
            if i >= len(node):
                return None
            if node[i] is None and create:
                node[i] = {}
            node = node[i]
        elif isinstance(node, dict):
            key = str(part)
            if key not in node:
                if not create:
                    return None
                node[key] = {}
            node = node[key]
        else:
            return None
    return node


def _set(parent: Any, last: str | int, value: Any) -> None:
    if isinstance(parent, list) and _index(last) is not None:
        i = _index(last)
        assert i is not None
        while len(parent) <= i:
            parent.append(None)
        parent[i] = value
    elif isinstance(parent, dict):
        parent[str(last)] = value
