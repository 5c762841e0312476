"""Document bodies: fetched by version through the body cache, in batches of listing
neighbours (``_prefetch``) and ahead of a reader in listing order (``_read_ahead``).  A
batch holding a document that fails its check (``Corrupt``, from a remote) is fetched
one by one, so only that document answers EIO."""

from __future__ import annotations

from typing import Any

import trio

from argonfs.errors import Corrupt
from argonfs.fs.limits import PREFETCH
from argonfs.fs.nodes import Node
from argonfs.fs.refresh import Refresh
from argonfs.fs.seam import log
from argonfs.snapshot import Listed, Snapshot


def _slot(entry: Listed) -> Any:
    return entry.version


def _each_body(view: Snapshot, collection: str, entries: list[Listed]) -> list[bytes | None]:
    """Bodies fetched one at a time, None for each one that fails its check (``Corrupt``),
    which its reader then fetches alone and gets EIO for."""
    out: list[bytes | None] = []
    for entry in entries:
        try:
            out.append(view.bodies(collection, [entry])[0])
        except Corrupt:
            out.append(None)
    return out


class Bodies(Refresh):
    async def _body(self, node: Node) -> bytes:
        """The bytes of a document (those it was written with, or its rendering): its
        attributes name its version slot, whose body comes from the cache, with its
        listing neighbours, or alone."""
        await self._refresh(node)
        path = node.path
        slot, entry = node.info["slot"], node.info["entry"]
        data = self.bodies.get(slot)
        if data is None and slot in self._inflight:
            await self._inflight[slot].wait()
            data = self.bodies.get(slot)
        if data is None:
            await self._prefetch(slot)
            data = self.bodies.get(slot)
        if data is None:
            view = await self._view(path)
            data = (await self.runner.run(view.bodies, path[2], [entry]))[0]
            self.bodies.put(slot, data)
        if len(data) != entry.size:
            log.warning("/%s: stored size %d differs from rendered size %d", "/".join(path), entry.size, len(data))
        self._read_ahead(slot)
        return data

    async def _prefetch(self, slot: Any) -> None:
        """Fetch the bodies of ``slot`` and the documents listed after it, in one query."""
        listed = self._listed.following(slot, PREFETCH)
        if listed is None:
            return
        (view, collection), entries = listed
        wanted = [e for e in entries if _slot(e) not in self.bodies and _slot(e) not in self._inflight]
        if not wanted:
            return
        done = trio.Event()
        for e in wanted:
            self._inflight[_slot(e)] = done

        try:
            try:
                bodies: list[bytes | None] = list(await self.runner.run(view.bodies, collection, wanted))
            except Corrupt as exc:
                # one document failed its check: its neighbours are good, fetch them alone
                log.warning("%s: fetching the %d documents of its batch one by one", exc, len(wanted))
                bodies = await self.runner.run(_each_body, view, collection, wanted)
            for e, data in zip(wanted, bodies, strict=True):
                if data is not None:
                    self.bodies.put(_slot(e), data)
        finally:
            for e in wanted:
                self._inflight.pop(_slot(e), None)
            done.set()

    def _read_ahead(self, slot: Any) -> None:
        """Reading in listing order: fetch the next window in the background while the
        reader works through this one, so it rarely waits for MongoDB."""
        if self.nursery is None:
            return
        listed = self._listed.following(slot, PREFETCH // 2 + 1)
        if listed is None or len(listed[1]) <= PREFETCH // 2:
            return
        ahead = _slot(listed[1][-1])
        if ahead not in self.bodies and ahead not in self._inflight:
            self.nursery.start_soon(self._prefetch_in_background, ahead)

    async def _prefetch_in_background(self, slot: Any) -> None:
        try:
            await self._prefetch(slot)
        except Exception as exc:  # a reader that needs it will fetch it itself and see the error
            log.debug("read-ahead from %s failed: %s", slot, exc)
