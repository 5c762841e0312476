"""Negative lookups answered from what the mount knows (fs/absent.py): ``cp -r`` into a
collection asks the store nothing before each create, and a name another process
creates still shows within the branch timeout."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time
from array import array
from collections import Counter
from types import SimpleNamespace

import pyfuse3
import pytest
import trio

from argonfs import codec
from argonfs.fs.absent import AbsentNames, name_hash
from argonfs.fs.limits import BRANCH_TIMEOUT, HEAD_TTL
from argonfs.fs.operations import ArgonOperations
from argonfs.runner import ThreadRunner
from argonfs.store.snapshots import MongoCatalog

B = "branch"


def keys(*stems: str) -> array[int]:
    return array("q", [name_hash(s) for s in stems])


# ---------------------------------------------------------------------- the bookkeeping alone


def test_a_listing_and_own_writes_prove_absence():
    k = AbsentNames()
    k.listed(B, "c", 10, keys("a", "b"))
    assert k.absent(B, "c", "x", 10)
    assert not k.absent(B, "c", "a", 10)
    assert not k.absent(B, "other", "x", 10)  # nothing known of another collection
    k.begin_write(B)
    k.end_write(B)
    k.wrote(B, "c", "x", 11)  # this daemon's put, in slot 11
    assert not k.absent(B, "c", "x", 11)
    assert k.absent(B, "c", "y", 11)
    k.removed(B, 12)  # a delete: the slot is ours, the name is not claimed absent
    assert k.absent(B, "c", "y", 12)


def test_a_slot_nobody_here_wrote_ends_what_is_known():
    k = AbsentNames()
    k.listed(B, "c", 10, keys("a"))
    assert k.absent(B, "c", "x", 10)
    assert not k.absent(B, "c", "x", 11)  # slot 11: another process's write
    assert not k.knows(B, "c")
    assert not k.absent(B, "c", "x", 10)  # gone for good, not only while the head is 11
    # nor carried over a gap by later own writes
    k.listed(B, "c", 20, keys())
    k.wrote(B, "c", "y", 22)  # slot 21 is not ours
    assert not k.absent(B, "c", "x", 22)


def test_own_writes_returning_out_of_order_and_in_flight():
    k = AbsentNames()
    k.listed(B, "c", 10, keys())
    k.begin_write(B)
    k.begin_write(B)
    k.wrote(B, "c", "b", 12)  # returned first (its call already ended in the runner)
    assert not k.absent(B, "c", "x", 12)  # slot 11 may be the other write, still in flight
    assert k.knows(B, "c")
    k.end_write(B)
    k.end_write(B)
    k.wrote(B, "c", "a", 11)
    assert k.absent(B, "c", "x", 12)
    assert not k.absent(B, "c", "a", 12) and not k.absent(B, "c", "b", 12)


def test_writes_that_may_take_several_slots_are_not_accounted_for():
    k = AbsentNames()
    k.listed(B, "c", 10, keys())
    k.wrote(B, "c", "a", None)  # a rename or a rewrite: perhaps no slot, perhaps several
    assert not k.absent(B, "c", "a", 10)
    assert k.absent(B, "c", "x", 10)  # it took none
    assert not k.absent(B, "c", "x", 13)  # it took some


def test_a_listing_pinned_before_own_writes_is_not_used():
    k = AbsentNames()
    k.listed(B, "c", 10, keys())
    k.wrote(B, "d", "x", 11)
    k.listed(B, "d", 10, keys())  # a listing of d pinned at 10 does not show x (slot 11)
    assert not k.knows(B, "d")
    assert not k.absent(B, "d", "x", 11)


def test_mkdir_knows_its_collection_is_empty_and_directories_stay_unchanged():
    k = AbsentNames()
    k.probed(B, 5)
    k.created(B, "new", 6)
    assert k.absent(B, "new", "1", 6)
    assert not k.unchanged(B, 5, 6)  # mkdir changed which collections exist
    for slot in range(7, 10):
        k.wrote(B, "new", str(slot), slot)
    assert k.unchanged(B, 6, 9)  # documents only
    assert not k.unchanged(B, 6, 10)  # slot 10: someone else's
    assert not k.absent(B, "new", "1", 10)


def test_a_head_below_what_was_counted_starts_again():
    """A rewrite that stored nothing may report a parent branch's slot as the head: the
    next probe shows the real one, lower, and nothing counted on the wrong one is kept."""
    k = AbsentNames()
    k.listed(B, "c", 4, keys())
    assert k.absent(B, "c", "x", 4) and k.unchanged(B, 4, 4)
    k.probed(B, 1)
    assert not k.knows(B, "c") and not k.unchanged(B, 4, 1)


def test_memory_is_bounded():
    k = AbsentNames(max_names=100)
    k.listed(B, "a", 1, keys(*map(str, range(60))))
    k.listed(B, "b", 1, keys(*map(str, range(60))))
    assert not k.knows(B, "a") and k.knows(B, "b")  # the least recently used went
    k.listed(B, "c", 1, keys(*map(str, range(200))))
    assert not k.knows(B, "c")


# ---------------------------------------------------------------------- the handlers, over a real repository


class CountingRunner(ThreadRunner):
    def __init__(self) -> None:
        super().__init__(4)
        self.calls: Counter[str] = Counter()

    async def run(self, fn, /, *args, **kwargs):  # type: ignore[override]
        self.calls[fn.__name__] += 1
        return await super().run(fn, *args, **kwargs)


async def _errno(call) -> int:
    with pytest.raises(pyfuse3.FUSEError) as info:
        await call
    return info.value.errno


async def test_cp_r_asks_the_store_only_to_commit(repo):
    repo.put("main", "papers", {"_id": 1})
    runner = CountingRunner()
    ops = ArgonOperations(MongoCatalog(repo), runner)
    ctx = SimpleNamespace(uid=os.getuid(), gid=os.getgid(), pid=os.getpid(), umask=0o022)
    branches = ops.inodes.get(("branches",)).ino
    branch = await ops.lookup(branches, b"main", ctx)
    assert await _errno(ops.lookup(branch.st_ino, b"copied", ctx)) == errno.ENOENT
    coll = await ops.mkdir(branch.st_ino, b"copied", 0o755, ctx)

    async def walk() -> None:
        """What the kernel asks again once its entries of the path expired."""
        await trio.sleep(BRANCH_TIMEOUT + 0.05)
        await ops.lookup(branches, b"main", ctx)
        await ops.lookup(branch.st_ino, b"copied", ctx)

    async def cp(numbers: range) -> None:
        """What cp does for each file it copies."""
        for i in numbers:
            name = f"{i}.json".encode()
            assert await _errno(ops.lookup(coll.st_ino, name, ctx)) == errno.ENOENT
            info, _ = await ops.create(coll.st_ino, name, 0o644, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ctx)
            await ops.write(info.fh, 0, codec.render({"_id": i, "n": i}))
            await ops.flush(info.fh)
            await ops.release(info.fh)
            await ops.getattr(coll.st_ino, ctx)

    await walk()  # the branch's collections are listed once: mkdir added one
    runner.calls.clear()
    await cp(range(50))
    assert runner.calls["put"] == 50
    assert runner.calls["stat"] == 0  # no lookup asked the store
    assert runner.calls["check_writable"] == 0  # each commit showed the branch writable
    assert set(runner.calls) <= {"put", "head", "resolve"}  # and a head check, a ref resolved once a second
    assert [e.stem for e in repo.entries("main", "copied")] == sorted(map(str, range(50)))
    assert repo.get("main", "copied", "7").doc == {"_id": 7, "n": 7}
    await walk()  # the writes were documents only: nothing to list again
    assert runner.calls["collections"] == 0 and runner.calls["collection_exists"] == 0

    # another process's write: the store is asked again, and the name shows
    repo.put("main", "copied", {"_id": "other"})
    await trio.sleep(HEAD_TTL + 0.05)
    runner.calls.clear()
    found = await ops.lookup(coll.st_ino, b"other.json", ctx)
    assert found.st_size == len(codec.render({"_id": "other"}))
    assert runner.calls["stat"] == 1
    assert await _errno(ops.lookup(coll.st_ino, b"missing.json", ctx)) == errno.ENOENT
    assert runner.calls["stat"] == 2
    await cp(range(50, 60))  # knowledge is not carried over that write
    assert runner.calls["stat"] == 12
    assert len(list(repo.entries("main", "copied"))) == 61


# ---------------------------------------------------------------------- through the kernel


def _visible_within(path, seconds: float) -> float:
    start = time.monotonic()
    while not path.exists():
        waited = time.monotonic() - start
        assert waited < seconds, f"{path.name} not visible after {waited:.2f} s"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.deadline(120)
def test_a_name_created_elsewhere_after_a_listing_shows_within_the_timeout(repo, mnt):
    repo.import_documents("main", "papers", ({"_id": i} for i in range(30)))
    papers = mnt / "branches/main/papers"
    assert len(os.listdir(papers)) == 30  # a complete listing: the mount knows the names
    assert not (papers / "new.json").exists()  # answered without the store
    repo.put("main", "papers", {"_id": "new", "by": "cli"})
    _visible_within(papers / "new.json", BRANCH_TIMEOUT)
    assert json.loads((papers / "new.json").read_text())["by"] == "cli"
    # the same in a collection this mount created (mkdir), which it knows is empty
    os.mkdir(mnt / "branches/main/made")
    assert not (mnt / "branches/main/made/x.json").exists()
    repo.put("main", "made", {"_id": "x"})
    _visible_within(mnt / "branches/main/made/x.json", BRANCH_TIMEOUT)


@pytest.mark.deadline(180)
def test_cp_r_while_another_process_writes_the_same_collection(repo, mnt, tmp_path):
    """cp -r copies exactly its files, and the names another process writes meanwhile
    all show through the mount."""
    src = tmp_path / "src"
    src.mkdir()
    n = 400
    for i in range(n):
        (src / f"{i}.json").write_bytes(codec.render({"_id": i, "from": "cp"}))
    dst = mnt / "branches/main/copied"
    os.mkdir(dst)
    assert os.listdir(dst) == []
    others = [f"o{i}" for i in range(40)]
    errors: list[BaseException] = []

    def other_process() -> None:
        try:
            for stem in others:
                repo.put("main", "copied", {"_id": stem, "from": "api"})
                time.sleep(0.01)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    writer = threading.Thread(target=other_process)
    writer.start()
    subprocess.run(["cp", "-r", f"{src}/.", f"{dst}/"], check=True, timeout=150)
    writer.join()
    assert not errors
    stored = {e.stem for e in repo.entries("main", "copied")}
    assert stored == {str(i) for i in range(n)} | set(others)
    assert repo.get("main", "copied", "123").doc == {"_id": 123, "from": "cp"}
    for stem in others:  # each shows through the mount, within the timeout at the latest
        _visible_within(dst / f"{stem}.json", BRANCH_TIMEOUT + HEAD_TTL)
    assert sorted(os.listdir(dst)) == sorted(f"{s}.json" for s in stored)
    # and the files cp wrote read back as their sources
    for i in (0, 1, 199, n - 1):
        assert (dst / f"{i}.json").read_bytes() == (src / f"{i}.json").read_bytes()
