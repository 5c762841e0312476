"""Hugging Face ``datasets``: a ``datasets.Dataset`` built from a snapshot's collection.
Needs ``argonfs[hf]``.

The dataset's fingerprint (and so its cache directory) is derived from the snapshot's
digest, the collection and the row transform: building it again from the same data,
whichever bundle holds it, reuses the Arrow cache without reading a body; different
data never does.  A live branch is refused, since a cache named after it would go
stale: pin it first (``argonfs.ml.pin("main")``), or give a bundle, a label (pinned to
its bundle now) or ``branch@SEQ`` (bundled first).  Blocking (pymongo).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import datasets
from bson import Binary, Decimal128, ObjectId, Regex, Timestamp
from datasets.fingerprint import Hasher

from argonfs.ml.pinning import Pin, pin

if TYPE_CHECKING:
    from argonfs.store import Repository

Row = dict[str, Any]
#: the version of ``plain``: part of the fingerprint of datasets built with it
PLAIN_VERSION = "plain-v1"


def plain(doc: dict[str, Any]) -> Row:
    """A document as Arrow takes it: ObjectId, Decimal128, Regex and Timestamp as
    strings, Binary as bytes, nested documents and arrays converted likewise."""
    return {k: _plain(v) for k, v in doc.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Binary):
        return bytes(value)
    if isinstance(value, ObjectId | Decimal128 | Regex | Timestamp):
        return str(value.pattern if isinstance(value, Regex) else value)
    if isinstance(value, datetime.datetime | str | int | float | bool | bytes) or value is None:
        return value
    return str(value)


def fingerprint(snapshot: Pin, collection: str, transform: Callable[[dict[str, Any]], Row] | None = None) -> str:
    """32 hex characters naming the dataset: the digest, the collection, the transform."""
    how = PLAIN_VERSION if transform is None else Hasher.hash(transform)
    return hashlib.sha256(f"{snapshot.digest}\0{collection}\0{how}".encode()).hexdigest()[:32]


def to_dataset(
    source: Pin | str,
    collection: str,
    *,
    transform: Callable[[dict[str, Any]], Row] | None = None,
    repo: Repository | None = None,
    cache_dir: str | None = None,
    keep_in_memory: bool = False,
) -> datasets.Dataset:
    """A ``datasets.Dataset`` of ``collection`` (rows in name order, ``transform(doc)``,
    default ``plain``) from a snapshot, or from a ref pinned here (a branch refused)."""
    snapshot = _snapshot(source, repo)
    if collection not in snapshot.collections:
        snapshot.entries(collection)  # NotFound, with the collections it has
    convert = transform or plain

    def rows() -> Iterator[Row]:
        for doc in snapshot.documents(collection):
            yield convert(doc.doc)

    return datasets.Dataset.from_generator(rows, cache_dir=cache_dir, keep_in_memory=keep_in_memory, fingerprint=fingerprint(snapshot, collection, transform))


def _snapshot(source: Pin | str, repo: Repository | None) -> Pin:
    if isinstance(source, Pin):
        return source
    if repo is None:
        from argonfs.store import Repository

        repo = Repository.open()
    if repo.resolve(source).kind == "branch":
        raise ValueError(f"{source!r} is a live branch, whose dataset cache would go stale; pin it first: argonfs.ml.pin({source!r})")
    return pin(source, repo=repo)
