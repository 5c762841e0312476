"""What the mount can prove about a branch without asking the store, because every change
to it since some slot is one of this daemon's own writes.

``cp -r`` into a collection looks up every new name before creating it (the kernel sends
LOOKUP, answered ENOENT, then CREATE), and walks ``branches/<b>/<collection>`` again each
time the kernel's entries expire; asked of the store, the first is one round trip per
file on top of its commit, the second a listing of the branch's collections per second.
The daemon can answer both from what it knows:

* a complete listing of a collection taken at branch slot ``p`` (``ls``, ``readdir``
  read to its end), or the collection's creation by this daemon at slot ``p`` (``mkdir``:
  empty), gives the names the collection held at ``p``; after ``p`` the daemon knows
  every name it wrote itself.  So a name neither listed nor written since is absent
  (``absent``);
* attributes of a branch or collection directory seen at slot ``h`` still hold when the
  only slots after ``h`` are this daemon's writes of documents (``unchanged``);

both **as long as every slot of the branch after ``p`` (or ``h``) up to its current head
is a write of this daemon that it accounted for**.  A slot it cannot account for
(another process's write; one of its own writes that failed half-way, or that may have
taken no slot or several: a rename, a rewrite that may store nothing) ends that: what is
known of the branch is dropped and the store is asked again.

Slots of a branch are dense (store/engine/versions.py: a slot is filled only after the one
below it), so "every slot in (p, head] is ours" is checked by counting: a ``_Run`` is a
range of slots all written here, extended as writes return (out of order when several
are in flight).  The head comes from the mount's head check (at most ``HEAD_TTL`` old),
so a change another process makes shows at the next head check, as attributes do.

Listed names are kept as 64-bit hashes in a sorted array (8 bytes a name, no object per
name): a hash equal to a listed one only sends that lookup to the store, never answers
wrongly.  Bounded: the least recently used collections are forgotten past
``max_names`` names in all.
"""

from __future__ import annotations

import bisect
import collections
from array import array
from collections.abc import Hashable
from dataclasses import dataclass, field

#: names kept for all collections together (8 bytes each): 8 MiB
MAX_NAMES = 1 << 20
#: own writes remembered above a gap before the branch's run is given up
MAX_PENDING = 4096


def name_hash(stem: str) -> int:
    """A stem's key in ``Known.listed`` (Python's string hash: stable for the process)."""
    return hash(stem)


@dataclass(eq=False)
class _Run:
    """Every slot of a branch in ``(base, end]`` is a write of this daemon, accounted for.
    ``epoch`` tells runs apart: knowledge from another run is void."""

    base: int
    end: int
    epoch: int
    #: own slots above ``end`` (returned before a slot below them)
    pending: set[int] = field(default_factory=set)
    #: the last own slot that may have changed which collections exist (mkdir, rmdir, rm)
    shape: int = 0

    def extend(self) -> None:
        while self.end + 1 in self.pending:
            self.end += 1
            self.pending.discard(self.end)


@dataclass(eq=False)
class Known:
    """The names of one collection at slot ``base``, and those written here since."""

    base: int
    epoch: int
    listed: array[int]
    written: set[int] = field(default_factory=set)
    sorted: bool = False

    def may_hold(self, key: int) -> bool:
        if key in self.written:
            return True
        if not self.sorted:  # sorted on first use: a listing nobody looks up in costs nothing
            self.listed = array("q", sorted(self.listed))
            self.sorted = True
        i = bisect.bisect_left(self.listed, key)
        return i < len(self.listed) and self.listed[i] == key

    def __len__(self) -> int:
        return len(self.listed) + len(self.written)


class AbsentNames:
    def __init__(self, max_names: int = MAX_NAMES) -> None:
        self.max_names = max_names
        self._runs: dict[Hashable, _Run] = {}
        self._known: collections.OrderedDict[tuple[Hashable, str], Known] = collections.OrderedDict()
        #: names held by ``_known``, all collections together
        self._names = 0
        #: own writes in flight per branch: a slot above a run's end may be one of theirs
        self._inflight: collections.Counter[Hashable] = collections.Counter()
        self._epochs = 0

    # --- what the daemon learns -------------------------------------------------------

    def begin_write(self, bid: Hashable) -> None:
        """A write to the branch is about to be sent (``end_write`` once it returned,
        whatever happened)."""
        self._inflight[bid] += 1

    def end_write(self, bid: Hashable) -> None:
        self._inflight[bid] -= 1
        if self._inflight[bid] <= 0:
            del self._inflight[bid]

    def probed(self, bid: Hashable, head: int) -> None:
        """The branch's head, as just read from the store.  Below the run's end it says
        that end came from a head that was not this branch's (a rewrite storing nothing
        reports the slot of the version it found, which may be a parent branch's), or a
        probe raced with a write: either way, start again from what the store says."""
        run = self._runs.get(bid)
        if run is not None and head < run.end and not self._inflight[bid]:
            self.forget(bid)
        self._run(bid, head)

    def wrote(self, bid: Hashable, collection: str, stem: str, slot: int | None) -> None:
        """This daemon stored ``stem`` in an existing collection; ``slot``: the one slot
        the write took, or None when it may have taken none or several (then it is not
        accounted for, and what is known of the branch ends at the first head that
        shows it)."""
        known = self._known.get((bid, collection))
        if known is not None:
            key = name_hash(stem)
            if key not in known.written:
                known.written.add(key)
                self._names += 1
                self._trim()
        if slot is not None:
            self._own(bid, slot)

    def removed(self, bid: Hashable, slot: int) -> None:
        """This daemon deleted a document, in one slot.  The name is not marked absent
        (a listing may still show it): only the slot is accounted for."""
        self._own(bid, slot, shape=True)

    def created(self, bid: Hashable, collection: str, slot: int) -> None:
        """This daemon created the collection, empty, at ``slot``."""
        self._own(bid, slot, shape=True)
        self._learn(bid, collection, slot, array("q"))

    def dropped(self, bid: Hashable, collection: str, slot: int) -> None:
        self._drop((bid, collection))
        self._own(bid, slot, shape=True)

    def listed(self, bid: Hashable, collection: str, base: int, keys: array[int]) -> None:
        """A listing of the collection pinned at slot ``base`` was read to its end;
        ``keys``: ``name_hash`` of every stem it showed."""
        self._learn(bid, collection, base, keys)

    def forget(self, bid: Hashable) -> None:
        """Give up what is known of a branch."""
        self._runs.pop(bid, None)
        for key in [k for k in self._known if k[0] == bid]:
            self._drop(key)

    # --- what it can answer -----------------------------------------------------------

    def knows(self, bid: Hashable, collection: str) -> bool:
        """Whether anything is known of the collection's names (``absent`` may say yes)."""
        return (bid, collection) in self._known

    def absent(self, bid: Hashable, collection: str, stem: str, head: int) -> bool:
        """Whether ``stem`` is provably not in the collection at ``head`` (the branch's
        head as last checked)."""
        key = (bid, collection)
        known = self._known.get(key)
        if known is None:
            return False
        run = self._run(bid, head)
        if run is None or known.epoch != run.epoch:
            self._drop(key)
            return False
        if head > run.end:
            return False  # perhaps one of ours, not returned yet: ask the store meanwhile
        self._known.move_to_end(key)
        return not known.may_hold(name_hash(stem))

    def unchanged(self, bid: Hashable, since: int, head: int) -> bool:
        """Whether the branch's slots after ``since`` up to ``head`` are all this
        daemon's writes of documents into existing collections, which change neither
        which collections exist nor a directory's attributes."""
        run = self._run(bid, head)
        return run is not None and run.base <= since <= head <= run.end and run.shape <= since

    # --- bookkeeping ------------------------------------------------------------------

    def _run(self, bid: Hashable, head: int) -> _Run | None:
        """The branch's run, started again at ``head`` when a slot up to ``head`` is
        nobody's here (none of this daemon's writes is in flight to claim it)."""
        run = self._runs.get(bid)
        if run is not None and head <= run.end:
            return run
        if run is not None and self._inflight[bid] and len(run.pending) <= MAX_PENDING:
            return run  # perhaps one of ours: decide once it returned
        return self._restart(bid, head)

    def _restart(self, bid: Hashable, base: int) -> _Run:
        """A new run from ``base``, keeping the own slots above it that already returned."""
        old = self._runs.get(bid)
        self.forget(bid)
        self._epochs += 1
        run = self._runs[bid] = _Run(base, base, self._epochs)
        if old is not None:
            run.pending = {s for s in old.pending if s > base}
            run.shape = old.shape
            run.extend()
        return run

    def _own(self, bid: Hashable, slot: int, *, shape: bool = False) -> None:
        run = self._runs.get(bid)
        if run is None or (slot <= run.end and not shape):
            return
        if shape:
            run.shape = max(run.shape, slot)
        if slot > run.end:
            run.pending.add(slot)
            run.extend()

    def _learn(self, bid: Hashable, collection: str, base: int, keys: array[int]) -> None:
        key = (bid, collection)
        self._drop(key)
        run = self._runs.get(bid)
        if run is None or base > run.end:
            # every slot up to ``base`` is in this listing; the rest of what is known of
            # the branch cannot be carried over the slots before it: start again there
            run = self._restart(bid, base)
        if base != run.end:
            return  # own writes after ``base`` are not in the listing, nor recorded for it
        if len(keys) > self.max_names:
            return
        self._known[key] = Known(base, run.epoch, keys)
        self._names += len(keys)
        self._trim()

    def _drop(self, key: tuple[Hashable, str]) -> None:
        old = self._known.pop(key, None)
        if old is not None:
            self._names -= len(old)

    def _trim(self) -> None:
        while self._names > self.max_names and self._known:
            _, old = self._known.popitem(last=False)
            self._names -= len(old)
