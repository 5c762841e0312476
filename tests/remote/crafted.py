"""A crafted remote (for tests): objects that a real push never writes but that a remote
can hold with every hash valid: sizes and offsets past a pack's end, counts that lie,
names no document or collection may have.  Written through the remote's own backend and
the bundle format's own encoders, so only what a test changes is wrong."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from argonfs.remote import format as f
from argonfs.remote import reading
from argonfs.store.repo.model import new_bundle_id


def rows(remote: reading.Remote, bundle: str, collection: str) -> list[list[Any]]:
    """A collection's manifest entries as rows ``[stem, size, hash, mtime_ns, pack, offset]``."""
    return [[e.stem, e.size, e.hash, e.mtime_ns, e.pack, e.offset] for e in remote.entries(remote.descriptor(bundle), collection)]


def chunk(remote: reading.Remote, collection: str, entries: list[list[Any]], *, n: int | None = None, raw: bytes | None = None) -> f.ChunkRef:
    """A chunk of ``entries`` as given (a pack hash becomes an index into the chunk's
    table; an int is kept as the index it claims to be), stored under its own hash; its
    reference says ``n`` entries (default: the true count).  ``raw``: these bytes instead."""
    packs: dict[str, int] = {}
    encoded = [row if len(row) != 6 or not isinstance(row[4], str) else [*row[:4], packs.setdefault(row[4], len(packs)), row[5]] for row in entries]
    data = raw if raw is not None else zlib.compress(orjson.dumps({"format": f.FORMAT, "collection": collection, "packs": list(packs), "entries": encoded}))
    h = f.digest(data)
    remote.store.put_if_absent(f.chunk_key(h), data)
    stems = [row[0] if isinstance(row, list) and isinstance(row[0], str) else "" for row in entries] or [""]
    return f.ChunkRef(h, stems[0], stems[-1], len(entries) if n is None else n)


def bundle(
    remote: reading.Remote,
    layers: dict[str, list[list[f.ChunkRef]]],
    *,
    counts: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """A descriptor of these collections under a new bundle id (sealed: its check is
    valid); ``counts`` as it claims them (default: the refs' counts), ``fields`` override
    the descriptor's own, ``extra`` its other fields (``sketch``, ``base``, ...)."""
    bundle_id = new_bundle_id()
    claimed = counts if counts is not None else {c: sum(r.n for layer in v for r in layer) for c, v in layers.items()}
    values: dict[str, Any] = {"bundle": bundle_id, "time_ns": 1_700_000_000_000_000_000, "branch": "main", "message": "crafted", "author": "mallory", **fields}
    desc = f.Descriptor(values["bundle"], values["time_ns"], values["branch"], values["message"], values["author"], layers, claimed, extra or {})
    assert remote.store.put_if_absent(f.bundle_key(bundle_id), desc.to_bytes())
    return bundle_id


def one_layer(remote: reading.Remote, collections: dict[str, list[list[Any]]]) -> str:
    """A bundle whose collections are one chunk each, of these rows."""
    return bundle(remote, {c: [[chunk(remote, c, entries)]] if entries else [[]] for c, entries in collections.items()})
