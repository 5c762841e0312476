"""History of a branch: the log of its versions, one version by its slot, and diffs
between two refs (merges and reverts build on them: store/repo/merges.py).

The log and diffs read version metadata and hashes (store/engine/diff.py finds what changed
since two chains' common point).  Blocking (pymongo).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from argonfs import codec
from argonfs.errors import InvalidName, NotFound
from argonfs.store.db.mongo import translating, translating_iter
from argonfs.store.engine import commits, lookup, packs
from argonfs.store.engine import diff as d
from argonfs.store.engine import reading as r
from argonfs.store.engine import versions as v
from argonfs.store.repo.documents import payload
from argonfs.store.repo.model import Document, LogEntry, View
from argonfs.store.repo.writes import Writes


class History(Writes):
    """Log, diff, merge and revert; see ``Repository``."""

    @translating_iter
    def log(self, ref: str | View, collection: str | None = None, stem: str | None = None, *, below: tuple[int, int] | None = None) -> Iterator[LogEntry]:
        """Versions newest first: the ref's own branch from its seq down, then each
        ancestor from its fork point down.  Unfiltered, each batch is read by slot id,
        so the first page costs the same whatever the length of the history; with a
        collection (and a document) it is an index scan of that collection per layer.

        Each entry's ``seq`` is where the version became visible, so ``branch@seq``
        shows it; a transaction's versions (a merge, a capture batch, ``apply``) are
        all visible from its commit's seq, and ``get_version`` reads each one by its
        ``slot``.

        ``below``: a position in the log, (``LogEntry.layer``, ``LogEntry.slot``) of an
        entry; the log then starts with the entry after it, at the cost of a first
        page (so a walk of a long log in pages never counts what it skips)."""
        view = self._pin(self._view(ref))
        if stem is not None and collection is None:
            raise InvalidName("a document filter needs a collection")
        first, under = below if below is not None else (0, None)
        kinds: dict[str, str | None] = {}
        for layer, (bid, limit) in enumerate(view.chain):
            if layer < first:
                continue
            top = limit or 0
            if layer == first and under is not None:
                top = min(top, under - 1)
            name = self._branch_record(bid)["name"]
            if collection is None:
                records: Iterable[dict[str, Any]] = lookup.slots_desc(self._versions, bid, top, limit=limit or 0)
            else:
                records = (r for r in lookup.key_history(self._versions, bid, limit, collection, stem) if r["s"] <= top)
            for rec in records:
                if rec["op"] == v.RANGE:
                    continue  # a bulk write's slot reservation: its records follow it
                if rec["op"] == v.COMMIT:  # the end of a merge or revert: it names the operation
                    yield LogEntry(
                        name, rec["s"], rec["t"], rec["a"], rec.get("kind", v.COMMIT), "", None, None, rec["k"], rec.get("kind"), slot=rec["s"], layer=layer
                    )
                elif rec["c"] == v.COMMITS:  # protect, unprotect, or gc's abort of a transaction
                    txn = rec["k"] if rec["op"] == v.ABORT else None
                    yield LogEntry(name, rec["s"], rec["t"], rec["a"], rec["op"], "", None, None, txn, None, slot=rec["s"], layer=layer)
                else:  # a transaction's version is listed at its slot, with the seq it is visible from
                    seq = commits.visible_from(self._versions, rec) or rec["s"]
                    kind = rec.get("xk")
                    if kind is None and rec.get("x"):  # a bulk listing's entry: its commit names the kind
                        if rec["x"] not in kinds:
                            kinds[rec["x"]] = (commits.txn_state(self._versions, bid, rec["x"])[0] or {}).get("kind")
                        kind = kinds[rec["x"]]
                    yield LogEntry(
                        name,
                        seq,
                        rec["t"],
                        rec["a"],
                        rec["op"],
                        rec["c"],
                        rec["k"] or None,
                        rec.get("z"),
                        rec.get("x"),
                        kind,
                        slot=rec["s"],
                        layer=layer,
                    )

    @translating
    def get_version(self, ref: str | View, collection: str, stem: str, slot: int) -> Document:
        """One listed version of a document: the put in ``slot`` of the ref's own branch
        (``LogEntry.slot``), visible to the ref, even when a later version of the same
        transaction hides it at every seq.  NotFound when that slot holds no visible put
        of this document (a delete has no content)."""
        view = self._pin(self._view(ref))
        bid, limit = view.chain[0]
        name = f"{stem + codec.SUFFIX!r} in {view.ref}/{collection}"
        rec = v.slot_record(self._versions, bid, slot) if 0 < slot <= (limit or 0) else None
        if rec is None or rec.get("op") != v.PUT or rec.get("c") != collection or rec.get("k") != stem or not commits.visible(self._versions, rec, limit):
            raise NotFound(f"no version in slot {slot} of {name}")
        return Document(collection, stem, payload(rec), rec["s"], rec["z"], rec["h"], rec["t"], rec["a"], rec.get("mt"), bid, raw=v.kept(rec))

    @translating
    def diff(self, old: str | View, new: str | View, collection: str | None = None, *, fields: bool = True) -> list[d.DocChange]:
        """Documents added, removed and modified from ``old`` to ``new``, by collection
        and name; for modified ones (with ``fields``) the JSON paths that changed.

        When the two share history, only keys written since their common point are
        compared (see store/engine/diff.py); otherwise every collection is listed on both sides."""
        a = self._pin(self._view(old))
        b = self._pin(self._view(new))
        above = d.above_shared(self._versions, a.chain, b.chain, collection)
        changes: list[d.DocChange] = []
        if above is None:
            names = {collection} if collection else set(self.collections(a)) | set(self.collections(b))
            for c in sorted(names):
                changes += self._diff_listings(a, b, c)
        else:
            for c in sorted(set(above.a) | set(above.b) | above.whole):
                if c in above.whole:
                    changes += self._diff_listings(a, b, c)
                else:
                    changes += self._diff_above(above, c, fields)
                    # its modified ones are settled there, from the slots each side read
        modified = [ch for ch in changes if ch.change == d.MODIFIED and (above is None or ch.collection in above.whole)]
        if modified:  # hashes are of the bytes: a version that only keeps other bytes is no change
            same = self._same_documents(modified, a, b, fields)
            changes = [ch for ch in changes if id(ch) not in same]
        return changes

    @translating
    def diff_fields(self, old: str | View, new: str | View, changes: list[d.DocChange]) -> list[d.DocChange]:
        """``changes`` (of ``diff(old, new, fields=False)``, a page of them say) with the
        paths that changed filled in for the modified ones, less those whose two
        versions turn out to hold the same document (only their kept bytes differ)."""
        a, b = self._pin(self._view(old)), self._pin(self._view(new))
        modified = [ch for ch in changes if ch.change == d.MODIFIED]
        same = self._same_documents(modified, a, b, True) if modified else set()
        return [ch for ch in changes if id(ch) not in same]

    def _same_documents(self, changes: list[d.DocChange], a: View, b: View, fields: bool) -> set[int]:
        """The changes (by ``id``) whose two versions hold the same document and only
        their bytes differ (docs/formats.md, "Kept bytes"); with ``fields``, the others
        get the paths that changed.  Without ``fields``, documents are read only where a
        side keeps bytes: two rendered versions with different hashes differ."""
        same = set()
        for c, chunk in d.chunks_by_collection(changes, v.PAGE):
            stems = [ch.stem for ch in chunk]
            old = lookup.lookup_many(self._versions, a.chain, c, stems, bodies=fields)
            new = lookup.lookup_many(self._versions, b.chain, c, stems, bodies=fields)
            if not fields:
                kept = [k for k in stems if v.KEPT_ZLIB in old[k] or v.KEPT_ZLIB in new[k]]
                if kept:
                    old.update(lookup.lookup_many(self._versions, a.chain, c, kept))
                    new.update(lookup.lookup_many(self._versions, b.chain, c, kept))
            for ch in chunk:
                o, n = old[ch.stem], new[ch.stem]
                if (v.KEPT_ZLIB in o or v.KEPT_ZLIB in n) and same_document(o["d"], n["d"]):
                    same.add(id(ch))
                elif fields:
                    ch.fields = d.field_diff(o["d"], n["d"])
        return same

    def _diff_above(self, above: d.Above, collection: str, fields: bool) -> list[d.DocChange]:
        """The names written above the shared point, compared: each side's own record of
        a name, or else the shared snapshot's entry, read from the chunks of its
        checkpoint those names fall in (store/engine/reading.py, ``entries_named``).
        Modified ones are then checked (and given their fields) from the two slots."""
        over_a, over_b = above.a.get(collection, {}), above.b.get(collection, {})
        stems = sorted(set(over_a) | set(over_b))
        need = [k for k in stems if k not in over_a or k not in over_b]
        shared = r.entries_named(self._versions, above.shared, collection, need) if need else {}
        out = []
        modified: list[tuple[d.DocChange, v.Layer, v.Layer]] = []
        for stem in stems:
            sa, sb = _side(over_a, shared, stem), _side(over_b, shared, stem)
            if sa is None and sb is not None:
                out.append(d.DocChange(collection, stem, d.ADDED))
            elif sb is None and sa is not None:
                out.append(d.DocChange(collection, stem, d.REMOVED))
            elif sa is not None and sb is not None and sa[0] != sb[0]:
                ch = d.DocChange(collection, stem, d.MODIFIED)
                out.append(ch)
                modified.append((ch, sa[1], sb[1]))
        same: set[int] = set()
        for start in range(0, len(modified), v.PAGE):
            same |= self._same_at(modified[start : start + v.PAGE], fields)
        return [ch for ch in out if id(ch) not in same]

    def _same_at(self, items: list[tuple[d.DocChange, v.Layer, v.Layer]], fields: bool) -> set[int]:
        """``_same_documents`` for changes whose two versions' slots are known: read by
        slot, not looked up.  A packed version keeps no bytes (store/engine/packs.py), so
        without ``fields`` only the other versions' records are read, to see which keep
        bytes."""
        slots = {s for _, sa, sb in items for s in (sa, sb)}
        packed = v.packs_of(self._versions, slots)  # type: ignore[arg-type]
        loose = [s for s in slots if s not in packed]
        recs = {(rec["b"], rec["s"]): rec for rec in v.by_ids(self._versions, [v.slot_id(*s) for s in loose], None if fields else v.NO_BODY)}  # type: ignore[arg-type]
        kept = {s for s, rec in recs.items() if v.KEPT_ZLIB in rec}
        if not fields:
            items = [it for it in items if it[1] in kept or it[2] in kept]
            if not items:
                return set()
            wanted = [s for _, sa, sb in items for s in (sa, sb) if s not in packed]
            recs.update(((rec["b"], rec["s"]), rec) for rec in v.by_ids(self._versions, [v.slot_id(*s) for s in wanted]))  # type: ignore[arg-type]
        bodies = packs.bodies(self.db, {s: packed[s] for _, sa, sb in items for s in (sa, sb) if s in packed})

        def doc(s: v.Layer) -> dict[str, Any]:
            if s in recs:
                return payload(recs[s])
            if s not in bodies:
                raise NotFound(f"version {v.slot_id(*s)} was reclaimed by 'argonfs gc' (its branch was deleted); resolve the ref again")  # type: ignore[arg-type]
            return bodies[s]

        same = set()
        for ch, sa, sb in items:
            o, n = doc(sa), doc(sb)
            if (sa in kept or sb in kept) and same_document(o, n):
                same.add(id(ch))
            elif fields:
                ch.fields = d.field_diff(o, n)
        return same

    def _diff_listings(self, a: View, b: View, collection: str) -> list[d.DocChange]:
        """Merge-join both listings by name; hashes say whether bodies differ."""

        def listing(view: View) -> Iterator[v.Entry]:
            try:
                yield from self.entries(view, collection)
            except NotFound:
                return

        out = []
        left, right = listing(a), listing(b)
        ea, eb = next(left, None), next(right, None)
        while ea is not None or eb is not None:
            if eb is None or (ea is not None and ea.stem < eb.stem):
                out.append(d.DocChange(collection, ea.stem, d.REMOVED))  # type: ignore[union-attr]
                ea = next(left, None)
            elif ea is None or eb.stem < ea.stem:
                out.append(d.DocChange(collection, eb.stem, d.ADDED))
                eb = next(right, None)
            else:
                if ea.hash != eb.hash:
                    out.append(d.DocChange(collection, ea.stem, d.MODIFIED))
                ea, eb = next(left, None), next(right, None)
        return out


def same_document(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return codec.render(a) == codec.render(b)


def _side(over: dict[str, dict[str, Any]], shared: dict[str, v.Entry], stem: str) -> tuple[str, tuple[Any, int]] | None:
    """A side's version of a name, as (hash, (branch id, slot)) (None: absent): its own
    record above the shared point, else the shared snapshot's entry."""
    rec = over.get(stem)
    if rec is None:
        e = shared.get(stem)
        return None if e is None else (e.hash, (e.branch_id, e.seq))
    return (rec["h"], (rec["b"], rec["s"])) if rec["op"] == v.PUT else None
