"""Listing a collection without a node per document (fs/nodes.py ``Listing``): what
readdir hands the kernel, the nodes made later from it, pages of immutable states
served again from memory, and a branch that changes under a listing the mount holds."""

from __future__ import annotations

import gc
import os
from types import SimpleNamespace
from typing import Any

import pyfuse3
import pytest
import trio

from argonfs import codec
from argonfs.fs.limits import HEAD_TTL
from argonfs.fs.operations import ArgonOperations
from argonfs.store.snapshots import MongoCatalog
from tests.fs.test_absent import CountingRunner

CTX = SimpleNamespace(uid=os.getuid(), gid=os.getgid(), pid=os.getpid(), umask=0o022)


class Kernel:
    """What the kernel keeps of readdirplus replies: names, attributes as they were
    when replied (the handler reuses one attributes object), and a buffer that holds
    ``per_call`` entries, so a listing takes many readdir calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, per_call: int = 25) -> None:
        self.per_call = per_call
        self.left = 0
        self.replied: list[tuple[str, dict[str, int], int]] = []
        monkeypatch.setattr(pyfuse3, "readdir_reply", self.reply)

    def reply(self, token: Any, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
        if self.left == 0:
            return False
        self.left -= 1
        fields = ("st_ino", "st_size", "st_mode", "st_mtime_ns", "st_nlink", "st_blocks")
        self.replied.append((name.decode(), {f: getattr(attr, f) for f in fields}, next_id))
        return True

    async def listdir(self, ops: ArgonOperations, ino: int) -> dict[str, dict[str, int]]:
        """opendir, readdir until it returns nothing more, releasedir."""
        fh = await ops.opendir(ino, CTX)
        self.replied, offset = [], 0
        while True:
            self.left = self.per_call
            before = len(self.replied)
            await ops.readdir(fh, offset, None)
            if len(self.replied) == before:
                break
            offset = self.replied[-1][2]
        await ops.releasedir(fh)
        return {name: attrs for name, attrs, _ in self.replied if name not in (".", "..")}


async def _collection(ops: ArgonOperations, *path: bytes) -> int:
    ino = ops.inodes.get((path[0].decode(),)).ino
    for name in path[1:]:
        ino = (await ops.lookup(ino, name, CTX)).st_ino
    return ino


async def test_a_listing_makes_no_node_per_document(repo, monkeypatch):
    repo.import_documents("main", "big", ({"_id": i, "n": "x" * (i % 7)} for i in range(2500)))
    bundle = repo.create_bundle("main", "b").id
    ops = ArgonOperations(MongoCatalog(repo), CountingRunner())
    kernel = Kernel(monkeypatch)
    coll = await _collection(ops, b"bundles", bundle.encode(), b"big")
    nodes = len(ops.inodes._by_ino)
    listed = await kernel.listdir(ops, coll)
    assert sorted(listed) == sorted(f"{i}.json" for i in range(2500))
    assert len(ops.inodes._by_ino) == nodes  # no node per document
    assert len(ops.inodes.listed) == 2500
    stored = {e.stem + codec.SUFFIX: e for e in repo.entries(bundle, "big")}
    for name, attrs in listed.items():
        entry = stored[name]
        assert attrs["st_size"] == entry.size == len(codec.render({"_id": int(name[:-5]), "n": "x" * (int(name[:-5]) % 7)}))
        assert attrs["st_mtime_ns"] == entry.mtime_ns and attrs["st_mode"] == 0o100444 and attrs["st_nlink"] == 1
    # the kernel asks about an inode it was given: the node is made then, with its lookup
    ino = listed["42.json"]["st_ino"]
    got = await ops.getattr(ino, CTX)
    assert (got.st_ino, got.st_size, got.st_mtime_ns) == (ino, listed["42.json"]["st_size"], listed["42.json"]["st_mtime_ns"])
    node = ops.inodes[ino]
    assert node.lookups == 1 and node.path == ("bundles", bundle, "big", "42.json")
    assert ino not in ops.inodes.listed
    assert (await ops.lookup(coll, b"42.json", CTX)).st_ino == ino and node.lookups == 2
    # reading it goes through the node made from the listing
    fi = await ops.open(ino, os.O_RDONLY, CTX)
    assert await ops.read(fi.fh, 0, 4096) == repo.get(bundle, "big", "42").rendered
    await ops.release(fi.fh)
    # a lookup of a listed name by path finds the listed inode, not a new one
    assert (await ops.lookup(coll, b"7.json", CTX)).st_ino == listed["7.json"]["st_ino"]
    # forgetting listed inodes leaves nothing behind
    await ops.forget([(attrs["st_ino"], 1) for name, attrs in listed.items() if name not in ("42.json", "7.json")])
    await ops.forget([(ino, 2), (listed["7.json"]["st_ino"], 2)])
    assert not ops.inodes.listed and not ops.inodes.listed_lookups
    assert len(ops.inodes._by_ino) == nodes


async def test_pages_the_kernel_holds_are_listed_again_from_memory(repo, monkeypatch):
    repo.import_documents("main", "big", ({"_id": i} for i in range(2500)))
    bundle = repo.create_bundle("main", "b").id
    runner = CountingRunner()
    ops = ArgonOperations(MongoCatalog(repo), runner)
    kernel = Kernel(monkeypatch, per_call=97)
    coll = await _collection(ops, b"bundles", bundle.encode(), b"big")
    first = await kernel.listdir(ops, coll)
    assert runner.calls["next_page"] == 4  # three pages and the end
    runner.calls.clear()
    assert await kernel.listdir(ops, coll) == first
    assert runner.calls["next_page"] == 1  # only the end is asked again
    assert {ops.inodes.listed_lookups[a["st_ino"]] for a in first.values()} == {2}
    # once the kernel forgot them, nothing keeps the pages: the store is asked again
    await ops.forget([(a["st_ino"], 2) for a in first.values()])
    ops._listed = type(ops._listed)()  # the body prefetch index holds entries, not pages
    gc.collect()
    runner.calls.clear()
    assert await kernel.listdir(ops, coll) == first
    assert runner.calls["next_page"] == 4


async def test_a_branch_changed_under_a_listing_shows_its_new_state(repo, monkeypatch):
    repo.import_documents("main", "c", ({"_id": i} for i in range(1500)))
    ops = ArgonOperations(MongoCatalog(repo), CountingRunner())
    kernel = Kernel(monkeypatch)
    coll = await _collection(ops, b"branches", b"main", b"c")
    before = await kernel.listdir(ops, coll)
    assert len(before) == 1500
    # another process changes the branch: a document grows, one is added, one removed
    repo.put("main", "c", {"_id": 5, "grown": "y" * 100})
    repo.put("main", "c", {"_id": "new"})
    repo.delete("main", "c", "9")
    await trio.sleep(HEAD_TTL + 0.05)
    grown = len(codec.render({"_id": 5, "grown": "y" * 100}))
    # an inode the kernel holds from the old listing: its attributes are the new version's
    assert (await ops.getattr(before["5.json"]["st_ino"], CTX)).st_size == grown
    after = await kernel.listdir(ops, coll)
    assert set(after) == set(before) - {"9.json"} | {"new.json"}
    assert after["5.json"]["st_size"] == grown and after["5.json"]["st_ino"] == before["5.json"]["st_ino"]
    assert after["6.json"] == before["6.json"]
    # one listed in both listings and never asked about: made from the newer listing
    node = ops.inodes[before["6.json"]["st_ino"]]
    assert node.info["head"] == (await ops._head(await ops._view(("branches", "main"))))
    assert node.lookups == 2
    # the document removed since: the kernel's old inode is gone from the store
    with pytest.raises(pyfuse3.FUSEError):
        await ops.getattr(before["9.json"]["st_ino"], CTX)


def test_bodies_of_a_listing_page_by_name_range(repo, monkeypatch):
    """The mount fetches a page's bodies by the range of its names where a branch holds
    many of them (store/snapshots.py), except an import's (not on the key index): the
    bytes are those of each listed version, also where the range holds other versions
    of the same names."""
    repo.import_documents("main", "c", ({"_id": i, "v": 0} for i in range(300)))
    bundle = repo.create_bundle("main", "b").id
    repo.create_branch("f")
    for i in range(0, 300, 3):
        repo.put("f", "c", {"_id": i, "v": 1})
    for i in range(0, 300, 6):
        repo.put("f", "c", {"_id": i, "v": 2, "pad": "z" * i})  # a second version in f's layer
    for i in range(1, 300, 10):
        repo.delete("f", "c", str(i))
    catalog = MongoCatalog(repo)
    by_slots = []
    original = type(repo).bodies

    def counted(self, collection, entries):
        by_slots.append(len(entries))
        return original(self, collection, entries)

    monkeypatch.setattr(type(repo), "bodies", counted)
    for ref in ("f", bundle):
        snapshot = catalog.resolve(ref).pinned()
        entries = list(snapshot.entries("c"))
        by_slots.clear()
        got = snapshot.bodies("c", entries)
        monkeypatch.setattr(type(repo), "bodies", original)
        assert got == [repo.get(ref, "c", e.stem).rendered for e in entries]
        monkeypatch.setattr(type(repo), "bodies", counted)
        # imported versions are not on the key index (bulk writes): those go by slot id,
        # nearly all of the fork's own by range
        imported = sum(1 for e in entries if e.branch_id == repo.branch("main").id)
        assert imported <= sum(by_slots) < imported + len(entries) // 10
    # a few versions of a branch are fetched by slot id, as before
    snapshot = catalog.resolve("f").pinned()
    few = [e for e in snapshot.entries("c")][:5]
    by_slots.clear()
    assert snapshot.bodies("c", few) == [repo.get("f", "c", e.stem).rendered for e in few]
    assert by_slots == [5]
