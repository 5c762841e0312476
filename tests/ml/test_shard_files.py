"""``ShardFileDataset`` and ``ShardSampler`` over shard files (the mount's format, on
local disk here; tests/fs/test_shards.py reads them through a mount)."""

from __future__ import annotations

import json

import pytest
from torch.utils.data import DataLoader

from argonfs import codec
from argonfs.ml.torch import ShardFileDataset, ShardSampler


def write_shards(root, docs: list[dict], per: int) -> None:
    root.mkdir(parents=True)
    bodies = [codec.render(d) for d in docs]
    for n, start in enumerate(range(0, len(bodies), per)):
        (root / f"{n:05d}.json").write_bytes(b"[" + b",\n".join(bodies[start : start + per]) + b"]\n")


@pytest.mark.parametrize("n", [0, 1, 7, 10, 23])
def test_items_in_listing_order(tmp_path, n):
    docs = [{"_id": i, "name": f"p{i}"} for i in range(n)]
    write_shards(tmp_path / "s", docs, 5)
    ds = ShardFileDataset(tmp_path / "s", per_shard=5, cache_shards=1)
    assert len(ds) == n
    assert [ds[i] for i in range(n)] == docs
    assert [ds[i] for i in reversed(range(n))] == docs[::-1]  # one shard kept: re-read as needed
    if n:
        assert ds[-1] == docs[-1]
    with pytest.raises(IndexError):
        ds[n]


def test_a_loader_with_workers_and_the_shard_sampler(tmp_path):
    docs = [{"_id": i} for i in range(23)]
    write_shards(tmp_path / "s", docs, 5)
    ds = ShardFileDataset(tmp_path / "s", per_shard=5, transform=lambda d: d["_id"])
    order = list(ShardSampler(ds, seed=1))
    assert sorted(order) == list(range(23))
    assert all(order[i] // 5 == order[i + 1] // 5 for i in range(4))  # a shard at a time
    loader = DataLoader(ds, batch_size=4, sampler=ShardSampler(ds, seed=2), num_workers=2, collate_fn=list)
    assert sorted(x for batch in loader for x in batch) == list(range(23))


def test_shards_past_99999_come_last(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    for name, docs in (("99999.json", [{"_id": 1}]), ("100000.json", [{"_id": 2}]), ("00000.json", [{"_id": 0}])):
        (root / name).write_bytes(b"[" + b",\n".join(codec.render(d) for d in docs) + b"]\n")
    ds = ShardFileDataset(root, per_shard=1)
    assert [ds[i]["_id"] for i in range(len(ds))] == [0, 1, 2]


def test_a_file_that_is_no_shard_of_that_size(tmp_path):
    write_shards(tmp_path / "s", [{"_id": i} for i in range(12)], 5)
    ds = ShardFileDataset(tmp_path / "s", per_shard=4)  # the last file (2 documents) counts
    with pytest.raises(ValueError, match="not a shard of 4"):
        ds[0]
    (tmp_path / "s/00000.json").write_text(json.dumps({"_id": 1}))
    with pytest.raises(ValueError, match="not a shard"):
        ShardFileDataset(tmp_path / "s", per_shard=5)[0]
