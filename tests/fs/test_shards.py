"""The shard view of frozen states (fs/shards.py): a collection as a few large JSON files."""

from __future__ import annotations

import errno
import json
import os

import pytest

from argonfs import codec
from argonfs.fs.shards import SHARD_DOCS, Layout, shard_name, shard_number, summarize
from argonfs.ml.torch import ShardFileDataset

N = SHARD_DOCS


def oserror(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def rendered(repo, ref: str, collection: str) -> list[bytes]:
    return [d.rendered for d in repo.documents(ref, collection)]


def expected_shards(bodies: list[bytes]) -> list[bytes]:
    return [b"[" + b",\n".join(bodies[i : i + N]) + b"]\n" for i in range(0, len(bodies), N)]


# ---------------------------------------------------------------------- pure


def test_names():
    assert shard_name(0) == "00000.json" and shard_name(123456) == "123456.json"
    assert [shard_number(n) for n in ("00000.json", "00042.json", "123456.json")] == [0, 42, 123456]
    for bad in ("0.json", "0042.json", "00042.jsonx", "00042", "-0001.json", "+0001.json", "\uff10" * 5 + ".json", "00001.json.bak"):
        assert shard_number(bad) is None, bad


def test_layout_pieces_match_the_bytes():
    sizes = [5, 1, 12, 3]
    bodies = {i: bytes([65 + i]) * s for i, s in enumerate(sizes)}
    whole = b"[" + b",\n".join(bodies.values()) + b"]\n"
    layout = Layout(sizes)
    assert layout.size == len(whole) == summarize((str(i), s) for i, s in enumerate(sizes))[0].size
    for off in range(len(whole) + 2):
        for size in range(len(whole) + 2 - off):
            docs = layout.needed(off, size)
            got = layout.piece(off, size, {i: bodies[i] for i in docs})
            assert got == whole[off : off + size], (off, size)


def test_summary_splits_every_n():
    entries = [(f"{i:05d}", 10) for i in range(2 * N + 1)]
    shards = summarize(entries)
    assert [(s.after, s.count) for s in shards] == [("", N), (f"{N - 1:05d}", N), (f"{2 * N - 1:05d}", 1)]
    assert summarize([]) == []


# ---------------------------------------------------------------------- the mount


@pytest.mark.deadline(240)
def test_shards_of_a_bundle_and_a_label(repo, mnt):
    n = 2 * N + 345  # not a multiple of N
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}", "tags": ["x"] * (i % 7)} for i in range(n)))
    repo.put("main", "authors", {"_id": "ada", "name": "Ada"})
    repo.create_collection("main", "empty")
    bundle = repo.create_bundle("main", "v1", label="production")
    repo.put("main", "papers", {"_id": 0, "title": "changed after the bundle"})
    root = mnt / "bundles" / bundle.id

    # not listed in the snapshot's root (cp -r of a bundle copies its documents only), never
    # a collection, and not in a live branch
    assert sorted(os.listdir(root)) == ["authors", "empty", "papers"]
    assert sorted(os.listdir(root / ".shards")) == ["authors", "empty", "papers"]
    assert oserror(os.stat, mnt / "branches/main/.shards") == errno.ENOENT
    assert oserror(os.stat, root / ".shards/nope") == errno.ENOENT
    assert oserror(os.stat, root / ".shards/papers/00003.json") == errno.ENOENT
    assert oserror(os.stat, root / ".shards/papers/3.json") == errno.ENOENT

    bodies = rendered(repo, bundle.id, "papers")
    want = expected_shards(bodies)
    shard_dir = root / ".shards/papers"
    assert sorted(os.listdir(shard_dir)) == ["00000.json", "00001.json", "00002.json"]
    got = []
    for i, name in enumerate(sorted(os.listdir(shard_dir))):
        st = os.stat(shard_dir / name)
        assert st.st_mode & 0o777 == 0o444
        data = (shard_dir / name).read_bytes()
        assert st.st_size == len(data) == len(want[i])
        assert data == want[i]
        with open(shard_dir / name) as f:
            got += json.load(f)
    assert got == [json.loads(b) for b in bodies]  # the concatenation of shards is the collection
    assert len(got) == n and got[0]["title"] == "paper 0"
    ds = ShardFileDataset(shard_dir)
    assert len(ds) == n and [ds[i] for i in range(0, n, 97)] == got[::97]

    # a range in the middle of a shard, on a fresh descriptor
    with open(shard_dir / "00001.json", "rb") as f:
        f.seek(12345)
        assert f.read(777) == want[1][12345 : 12345 + 777]
    fd = os.open(shard_dir / "00002.json", os.O_RDONLY)
    try:
        assert os.pread(fd, 100, 50) == want[2][50:150]
    finally:
        os.close(fd)

    assert json.loads((root / ".shards/authors/00000.json").read_bytes()) == [{"_id": "ada", "name": "Ada"}]
    assert os.listdir(root / ".shards/empty") == []  # no documents, no shard

    # a label reaches its bundle's shards; a BRANCH@SEQ view has them too
    label_shards = mnt / "labels/production/.shards/papers"
    assert (label_shards / "00002.json").read_bytes() == want[2]
    seq = repo.head("main")
    now = expected_shards(rendered(repo, f"main@{seq}", "papers"))
    assert (mnt / f"branches/main@{seq}/.shards/papers/00000.json").read_bytes() == now[0] != want[0]


@pytest.mark.deadline(120)
def test_shards_are_read_only(repo, mnt):
    repo.put("main", "papers", {"_id": 1, "title": "one"})
    bundle = repo.create_bundle("main", "v1")
    shards = mnt / "bundles" / bundle.id / ".shards"
    shard = shards / "papers/00000.json"
    assert json.loads(shard.read_bytes()) == [{"_id": 1, "title": "one"}]
    attempts = [
        (open, shard, "w"),
        (open, shard, "a"),
        (open, shards / "papers/00001.json", "w"),
        (os.truncate, shard, 0),
        (os.unlink, shard),
        (os.rename, shard, shards / "papers/00005.json"),
        (os.mkdir, shards / "papers/x"),
        (os.mkdir, shards / "x"),
        (os.rmdir, shards / "papers"),
        (os.chmod, shard, 0o644),
    ]
    for fn, *args in attempts:
        assert oserror(fn, *args) == errno.EROFS, (fn.__name__, args)
    assert shard.read_bytes() == b"[" + codec.render({"_id": 1, "title": "one"}) + b"]\n"


@pytest.mark.deadline(120)
def test_a_shard_with_documents_larger_than_the_body_cache_keeps(repo, mnt):
    big = "x" * (9 << 20)  # over the body cache's 8 MiB bound per body: read in many kernel reads
    repo.put("main", "blobs", {"_id": 1, "data": big})
    repo.put("main", "blobs", {"_id": 2, "data": "small"})
    repo.put("main", "blobs", {"_id": 3, "data": big[:-1]})
    bundle = repo.create_bundle("main", "big")
    shard = mnt / "bundles" / bundle.id / ".shards/blobs/00000.json"
    want = expected_shards(rendered(repo, bundle.id, "blobs"))[0]
    assert os.stat(shard).st_size == len(want)
    with open(shard, "rb") as f:
        assert f.read() == want
    with open(shard) as f:
        assert [d["_id"] for d in json.load(f)] == [1, 2, 3]


@pytest.mark.deadline(120)
def test_opening_a_shard_logs_a_read_of_each_of_its_documents(repo, mount_factory):
    repo.import_documents("main", "papers", ({"_id": i} for i in range(N + 2)))
    bundle = repo.create_bundle("main", "v1", label="production")
    m = mount_factory("--read-log")
    (m / "labels/production/.shards/papers/00001.json").read_bytes()
    os.stat(m / "labels/production/.shards/papers/00000.json")  # a stat is not a read
    mount_factory.stop(m)  # what is still buffered is stored at unmount
    rows = repo.read_log(bundle.id)
    second = [e.stem for e in repo.entries(bundle.id, "papers")][N:]  # listing (name) order: "998", "999"
    assert len(second) == 2 and sorted((r["collection"], r["id"]) for r in rows) == sorted(("papers", k) for k in second)
