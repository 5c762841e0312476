"""History of a branch: the log of its versions, diffs between two refs, three-way
merges and reverts.

The log and diffs read version metadata and hashes (store/engine/diff.py finds what changed
since two chains' common point); a merge (rules in store/repo/merge.py) and a revert append
their versions as one transaction, like any atomic write (docs/history.md).
Blocking (pymongo).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from argonfs import codec
from argonfs.errors import Conflict, InvalidName, NotFound
from argonfs.store.db.mongo import translating, translating_iter
from argonfs.store.engine import commits, lookup
from argonfs.store.engine import diff as d
from argonfs.store.engine import versions as v
from argonfs.store.repo import merge as m
from argonfs.store.repo import protect
from argonfs.store.repo.documents import payload
from argonfs.store.repo.model import ADDED, DELETED, UPDATED, Document, LogEntry, MergeResult, View, new_bundle_id, now
from argonfs.store.repo.writes import Writes

#: above this many candidate names in a collection, a diff merge-joins the two listings
#: (checkpoints make a listing about 4 s per million documents on SecantusDB) instead of
#: looking the names up in batches (a 1,000-name lookup costs seconds on a large
#: collection there: 129 s for 10,000 names of a 1M-document collection)
DIFF_BY_LOOKUP = 2000


class History(Writes):
    """Log, diff, merge and revert; see ``Repository``."""

    @translating_iter
    def log(self, ref: str | View, collection: str | None = None, stem: str | None = None) -> Iterator[LogEntry]:
        """Versions newest first: the ref's own branch from its seq down, then each
        ancestor from its fork point down.  Unfiltered, each batch is read by slot id,
        so the first page costs the same whatever the length of the history; with a
        collection (and a document) it is an index scan of that collection per layer.

        Each entry's ``seq`` is where the version became visible, so ``branch@seq``
        shows it; a transaction's versions (a merge, a capture batch, ``apply``) are
        all visible from its commit's seq, and ``get_version`` reads each one by its
        ``slot``."""
        view = self._pin(self._view(ref))
        if stem is not None and collection is None:
            raise InvalidName("a document filter needs a collection")
        for bid, limit in view.chain:
            name = self._branch_record(bid)["name"]
            if collection is None:
                records: Iterable[dict[str, Any]] = lookup.slots_desc(self._versions, bid, limit or 0)
            else:
                records = lookup.key_history(self._versions, bid, limit, collection, stem)
            for rec in records:
                if rec["op"] == v.RANGE:
                    continue  # a bulk write's slot reservation: its records follow it
                if rec["op"] == v.COMMIT:  # the end of a merge or revert: it names the operation
                    yield LogEntry(name, rec["s"], rec["t"], rec["a"], rec.get("kind", v.COMMIT), "", None, None, rec["k"], rec.get("kind"), slot=rec["s"])
                elif rec["c"] == v.COMMITS:  # protect, unprotect, or gc's abort of a transaction
                    txn = rec["k"] if rec["op"] == v.ABORT else None
                    yield LogEntry(name, rec["s"], rec["t"], rec["a"], rec["op"], "", None, None, txn, None, slot=rec["s"])
                else:  # a transaction's version is listed at its slot, with the seq it is visible from
                    seq = commits.visible_from(self._versions, rec) or rec["s"]
                    yield LogEntry(
                        name, seq, rec["t"], rec["a"], rec["op"], rec["c"], rec["k"] or None, rec.get("z"), rec.get("x"), rec.get("xk"), slot=rec["s"]
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
        found = d.changed_keys(self._versions, a.chain, b.chain, collection)
        if found is None:
            names = {collection} if collection else set(self.collections(a)) | set(self.collections(b))
            keys: dict[str, set[str]] = {}
            whole = names
        else:
            keys, whole = found
        changes: list[d.DocChange] = []
        for c in sorted(set(keys) | whole):
            if c in whole or len(keys[c]) > DIFF_BY_LOOKUP:
                changes += self._diff_listings(a, b, c)
            else:
                changes += self._diff_keys(a, b, c, sorted(keys[c]))
        modified = [ch for ch in changes if ch.change == d.MODIFIED]
        if modified:  # hashes are of the bytes: a version that only keeps other bytes is no change
            same = self._same_documents(modified, a, b, fields)
            changes = [ch for ch in changes if id(ch) not in same]
        return changes

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
                if (v.KEPT_ZLIB in o or v.KEPT_ZLIB in n) and _same_doc(o["d"], n["d"]):
                    same.add(id(ch))
                elif fields:
                    ch.fields = d.field_diff(o["d"], n["d"])
        return same

    def _diff_keys(self, a: View, b: View, collection: str, stems: list[str]) -> list[d.DocChange]:
        out = []
        for start in range(0, len(stems), v.PAGE):
            chunk = stems[start : start + v.PAGE]
            ra = lookup.lookup_many(self._versions, a.chain, collection, chunk, bodies=False)
            rb = lookup.lookup_many(self._versions, b.chain, collection, chunk, bodies=False)
            for stem in chunk:
                change = _compare(ra.get(stem), rb.get(stem))
                if change:
                    out.append(d.DocChange(collection, stem, change))
        return out

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

    @translating
    def merge(self, source: str, target: str, *, strategy: str = "fail", dry_run: bool = False, message: str = "") -> MergeResult:
        """Three-way merge of ``source`` into the branch ``target``.

        The base is the newest of: the two refs' common fork point, and the source side of
        the latest earlier merge between the two branches (either direction), so merging
        twice only brings what is new.  Each document changed on either side since the
        base is merged field by field (store/repo/merge.py); a collection dropped on one side
        and changed on the other is a conflict.  ``strategy``: ``fail`` (nothing changes
        if there is any conflict), ``ours`` or ``theirs`` (conflicts resolved to that
        side).  The writes are applied atomically (commits.append_atomic) and recorded in
        ``merges``."""
        if strategy not in ("fail", "ours", "theirs"):
            raise InvalidName(f"unknown merge strategy {strategy!r}: use fail, ours or theirs")
        src = self._pin(self.resolve(source))
        tgt_view = self._writable(target)
        if not dry_run:
            protect.refuse_captured(self.db, target, tgt_view.branch_id)
        tgt = self._pin(tgt_view)
        base = self._merge_base(src, tgt)
        result = MergeResult(source, target, base.ref)
        records: list[dict[str, Any]] = []
        for collection, stems, whole in self._merge_candidates(base, src, tgt):
            dropped = self._merge_collection_drop(base, src, tgt, collection, whole, result, records)
            if dropped:
                continue
            for start in range(0, len(stems), v.PAGE):
                chunk = stems[start : start + v.PAGE]
                sides = [lookup.lookup_many(self._versions, view.chain, collection, chunk) for view in (base, tgt, src)]
                for stem in chunk:
                    b, o, t = (side[stem]["d"] if stem in side else None for side in sides)
                    merged, conflicts = m.merge_document(b, o, t)
                    if conflicts:
                        result.conflicts += [(collection, stem, c) for c in conflicts]
                        if strategy == "theirs":
                            merged, _ = m.merge_document(b, t, o)
                    if _same_doc(merged, o):
                        continue
                    if merged is None:
                        records.append(self._record(v.DELETE, collection, stem))
                        result.note(DELETED, collection, stem)
                    else:
                        records.append(self._record(v.PUT, collection, stem, merged))
                        result.note(ADDED if o is None else UPDATED, collection, stem)
        if result.conflicts and strategy == "fail":
            return result
        if dry_run or not records:
            return result
        if self._head(tgt.branch_id) != tgt.seq:
            raise Conflict(f"{target!r} changed while the merge was computed; run it again")
        for rec in records:
            if rec["k"]:
                self._catalog(tgt.branch_id, rec["c"])
        txn = new_bundle_id()
        commit = {"kind": "merge", "source": source, "sb": src.branch_id, "ss": src.seq, "t": now(), "a": self.author, "message": message}
        last = commits.append_atomic(self._versions, tgt.branch_id, records, tgt.seq, txn, commit)
        self._heads[tgt.branch_id] = last
        self.db["merges"].insert_one(
            {"_id": txn, "sb": src.branch_id, "ss": src.seq, "tb": tgt.branch_id, "ts": last, "t": commit["t"], "a": self.author, "message": message}
        )
        result.seq = last
        return result

    @translating
    def revert(self, branch: str, to: str, *, message: str = "") -> MergeResult:
        """Write new versions to ``branch`` that make it equal to an earlier state; the
        history is kept.  ``to``: a seq or an ISO time of the branch, or any ref (a
        bundle, a label, ``other@SEQ``).  Applied atomically, like a merge."""
        view = self._writable(branch)
        protect.refuse_captured(self.db, branch, view.branch_id)
        current = self._pin(view)
        ref = f"{branch}@{to}" if to.isdigit() or _is_time(to) else to
        old = self._pin(self.resolve(ref))
        result = MergeResult(ref, branch, ref)
        records: list[dict[str, Any]] = []
        now_colls, old_colls = set(self.collections(current)), set(self.collections(old))
        for c in sorted(now_colls - old_colls):
            records.append(self._record(v.DROP, c, v.MARKER_KEY))
            result.dropped.append(c)
        for c in sorted(old_colls - now_colls):
            if next(iter(self.entries(old, c)), None) is None:
                records.append(self._record(v.MKCOL, c, v.MARKER_KEY))
        changes = [ch for ch in self.diff(current, old, fields=False) if ch.collection not in result.dropped]
        for c, chunk in d.chunks_by_collection(changes, v.PAGE):
            bodies = lookup.lookup_many(self._versions, old.chain, c, [ch.stem for ch in chunk if ch.change != d.REMOVED])
            for ch in chunk:
                if ch.change == d.REMOVED:
                    records.append(self._record(v.DELETE, c, ch.stem))
                    result.note(DELETED, c, ch.stem)
                else:
                    records.append(self._record(v.PUT, c, ch.stem, bodies[ch.stem]["d"]))
                    result.note(ADDED if ch.change == d.ADDED else UPDATED, c, ch.stem)
        if not records:
            return result
        for rec in records:
            self._catalog(current.branch_id, rec["c"])
        commit = {"kind": "revert", "to": ref, "t": now(), "a": self.author, "message": message}
        last = commits.append_atomic(self._versions, current.branch_id, records, current.seq, new_bundle_id(), commit)
        self._heads[current.branch_id] = last
        result.seq = last
        return result

    def _merge_base(self, src: View, tgt: View) -> View:
        rows = list(
            self.db["merges"]
            .find({"$or": [{"sb": src.branch_id, "tb": tgt.branch_id}, {"sb": tgt.branch_id, "tb": src.branch_id}]})
            .sort("t", DESCENDING)
            .limit(1)
        )
        if rows:
            row = rows[0]
            if row["sb"] == src.branch_id:  # merged from the source before: everything up to ss is in
                seq = min(row["ss"], src.seq or 0)
                return View(f"{self._branch_record(row['sb'])['name']}@{seq}", self._chain(row["sb"], seq), "seq")
            # merged the other way: the target's side of that merge is an ancestor of both
            return View(f"{self._branch_record(row['sb'])['name']}@{row['ss']}", self._chain(row["sb"], row["ss"]), "seq")
        shared = d.shared_point(src.chain, tgt.chain)
        if shared is None:
            raise Conflict("the two refs share no history")
        i, _j, seq = shared
        bid = src.chain[i][0]
        return View(f"{self._branch_record(bid)['name']}@{seq}", ((bid, seq), *src.chain[i + 1 :]), "seq")

    def _merge_candidates(self, base: View, src: View, tgt: View) -> Iterator[tuple[str, list[str], bool]]:
        keys: dict[str, set[str]] = {}
        whole: set[str] = set()
        for side in (src, tgt):
            found = d.changed_keys(self._versions, base.chain, side.chain, None)
            if found is None:
                raise Conflict("the two refs share no history")
            for c, ks in found[0].items():
                keys.setdefault(c, set()).update(ks)
            whole |= found[1]
        for c in sorted(set(keys) | whole):
            stems = set(keys.get(c, ()))
            if c in whole:  # a collection marker: every document is a candidate
                for view in (base, src, tgt):
                    with contextlib.suppress(NotFound):
                        stems.update(e.stem for e in self.entries(view, c))
            yield c, sorted(stems), c in whole

    def _merge_collection_drop(
        self, base: View, src: View, tgt: View, collection: str, whole: bool, result: MergeResult, records: list[dict[str, Any]]
    ) -> bool:
        """A collection dropped on one side: applied if the other side did not change it,
        a conflict if it did.  True when the collection is settled at that level."""
        if not whole:
            return False
        exists = [self._collection_exists(view, collection) for view in (base, tgt, src)]
        in_base, in_tgt, in_src = exists
        if not in_base or (in_tgt and in_src):
            return False
        changed_src = bool(self.diff(base, src, collection, fields=False))
        changed_tgt = bool(self.diff(base, tgt, collection, fields=False))
        if in_tgt and not in_src:  # the source dropped it
            if changed_tgt:
                result.conflicts.append((collection, None, m.MergeConflict(m.DROP_MODIFY, collection, None, "modified", "dropped")))
            else:
                records.append(self._record(v.DROP, collection, v.MARKER_KEY))
                result.dropped.append(collection)
            return True
        if in_src and not in_tgt and changed_src:  # the target dropped what the source changed
            result.conflicts.append((collection, None, m.MergeConflict(m.DROP_MODIFY, collection, None, "dropped", "modified")))
        return True


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _same_doc(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return codec.render(a) == codec.render(b)


def _compare(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    if old is None:
        return d.ADDED if new is not None else None
    if new is None:
        return d.REMOVED
    return d.MODIFIED if old["h"] != new["h"] else None
