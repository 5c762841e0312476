"""Merges and reverts of branches: a three-way merge of two refs (the rules per
document in store/repo/merge.py) and a revert to an earlier state, each applied as one
transaction like any atomic write (docs/history.md).  Blocking (pymongo).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from argonfs.errors import Conflict, InvalidName, NotFound
from argonfs.store.db.mongo import translating
from argonfs.store.engine import commits, lookup
from argonfs.store.engine import diff as d
from argonfs.store.engine import versions as v
from argonfs.store.repo import merge as m
from argonfs.store.repo import protect
from argonfs.store.repo.history import History, same_document
from argonfs.store.repo.model import ADDED, DELETED, UPDATED, MergeResult, View, new_bundle_id, now


class Merges(History):
    """Merge and revert; see ``Repository``."""

    @translating
    def merge(self, source: str, target: str, *, strategy: str = "fail", dry_run: bool = False, message: str = "", expect: int | None = None) -> MergeResult:
        """Three-way merge of ``source`` into the branch ``target``.

        The base is the newest of: the two refs' common fork point, and the source side of
        the latest earlier merge between the two branches (either direction), so merging
        twice only brings what is new.  Each document the source changed since the base
        is merged field by field (one only the target changed is already merged) (store/repo/merge.py); a collection dropped on one side
        and changed on the other is a conflict.  ``strategy``: ``fail`` (nothing changes
        if there is any conflict), ``ours`` or ``theirs`` (conflicts resolved to that
        side).  The writes are applied atomically (commits.append_atomic) and recorded in
        ``merges``.  ``expect``: the target's head the caller has seen (a preview's);
        Conflict, with nothing written, if the target has moved since."""
        if strategy not in ("fail", "ours", "theirs"):
            raise InvalidName(f"unknown merge strategy {strategy!r}: use fail, ours or theirs")
        src = self._pin(self.resolve(source))
        tgt_view = self._writable(target)
        if not dry_run:
            protect.refuse_captured(self.db, target, tgt_view.branch_id)
        tgt = self._pin(tgt_view)
        if expect is not None and tgt.seq != expect:
            raise Conflict(f"{target!r} moved since the merge was previewed (head {expect}, now {tgt.seq}): preview it again")
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
                    if same_document(merged, o):
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
        guard = None if expect is None else _unmoved(target, tgt.seq or 0, len(records))
        last = commits.append_atomic(self._versions, tgt.branch_id, records, tgt.seq, txn, commit, guard)
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
        """The names a merge must settle: those the source changed since the base.  A
        name only the target changed merges to the target's own version (the source
        still has the base's), so it is never read; a collection the target alone made
        wholly uncertain (a marker) is still flagged, for the drop check, but its
        candidates stay the source's change."""
        found = {}
        for side in (src, tgt):
            got = d.changed_keys(self._versions, base.chain, side.chain, None)
            if got is None:
                raise Conflict("the two refs share no history")
            found[side is src] = got
        (src_keys, src_whole), (_tgt_keys, tgt_whole) = found[True], found[False]
        for c in sorted(set(src_keys) | src_whole):
            stems = set(src_keys.get(c, ()))
            if c in src_whole:  # a marker on the source: every document is a candidate
                for view in (base, src, tgt):
                    with contextlib.suppress(NotFound):
                        stems.update(e.stem for e in self.entries(view, c))
            yield c, sorted(stems), c in src_whole or c in tgt_whole

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


def _unmoved(target: str, seq: int, count: int) -> commits.Guard:
    """A guard refusing a merge's appends as soon as another writer has written to the
    target: its records go right above ``seq`` and its commit right above them, or the
    merge stops with Conflict, uncommitted (invisible; gc aborts what it wrote)."""

    def check(base: int) -> None:
        if base not in (seq, seq + count):
            raise Conflict(f"{target!r} moved while the merge was applied: preview it again")

    return check


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
