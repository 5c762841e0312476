"""PyTorch: map-style and iterable datasets over a snapshot, batched fetches, the
version cache, and DataLoader workers that each open their own client."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import DataLoader

from argonfs.errors import NotFound
from argonfs.ml import pin
from argonfs.ml.torch import SnapshotDataset, SnapshotIterableDataset
from tests.ml.conftest import people


class Probe:
    """A transform that says which process served an item and whose client it used."""

    def __init__(self, snap) -> None:
        self.snap = snap

    def __call__(self, doc: dict) -> tuple[int, int, int]:
        self.snap.repo()
        return doc["_id"], os.getpid(), self.snap._opened[1]


@pytest.fixture
def snap(repo):
    repo.import_documents("main", "people", people(50))
    return pin("main", repo=repo)


@pytest.fixture
def fetches(snap, monkeypatch):
    """How many documents each body round trip of the snapshot's repository asked for."""
    repo = snap.repo()
    calls: list[int] = []
    real = repo.bodies

    def bodies(collection, entries):
        calls.append(len(entries))
        return real(collection, entries)

    monkeypatch.setattr(repo, "bodies", bodies)
    return calls


def test_map_dataset_lists_once_fetches_in_batches_and_caches(snap, fetches) -> None:
    ds = SnapshotDataset(snap, "people", fetch_size=16)
    assert len(ds) == 50 and ds.names[:3] == ["0", "1", "10"]  # name order
    assert ds[0] == people(50)[0] and ds[-1]["_id"] == int(ds.names[-1])
    assert fetches == [16, 2]  # the aligned blocks around items 0 and 49
    loader = DataLoader(ds, batch_size=20, shuffle=True, collate_fn=list, generator=torch.Generator().manual_seed(1))
    assert sorted(d["_id"] for batch in loader for d in batch) == list(range(50))
    assert sum(fetches) == 50 and max(fetches) <= 16  # each body once, in round trips of <= 16
    fetches.clear()
    assert sum(len(b) for b in loader) == 50 and fetches == []  # second epoch: all cached
    with pytest.raises(IndexError):
        ds[50]


def test_cache_is_bounded_and_keyed_by_version(snap, fetches) -> None:
    ds = SnapshotDataset(snap, "people", fetch_size=10, cache_bytes=200)
    for i in range(50):
        ds[i]
    assert ds._cached_bytes <= 200 + 10 * 60 and len(ds._cache) < 50
    fetches.clear()
    ds[0]  # evicted: fetched again
    assert fetches == [10]
    same = SnapshotDataset(pin(snap.bundle, repo=snap.repo()), "people")
    assert [e.version for e in same._entries] == [e.version for e in ds._entries]


def test_dataloader_workers_each_open_their_own_client(snap) -> None:
    ds = SnapshotDataset(snap, "people", fetch_size=8)
    ds.transform = Probe(snap)
    loader = DataLoader(ds, batch_size=5, num_workers=2, collate_fn=list, persistent_workers=True)
    for _epoch in range(2):
        items = [item for batch in loader for item in batch]
        assert sorted(i for i, _, _ in items) == list(range(50))
        pids = {pid for _, pid, _ in items}
        assert len(pids) == 2 and os.getpid() not in pids
        assert all(opened == pid for _, pid, opened in items)  # each worker's own repository


def test_preloaded_cache_is_inherited_by_forked_workers(snap, fetches) -> None:
    ds = SnapshotDataset(snap, "people", fetch_size=16).preload()
    assert fetches == [16, 16, 16, 2]
    ds.transform = Probe(snap)
    items = [item for batch in DataLoader(ds, batch_size=10, num_workers=2, collate_fn=list) for item in batch]
    assert sorted(i for i, _, _ in items) == list(range(50)) and os.getpid() not in {pid for _, pid, _ in items}
    fetches.clear()
    SnapshotDataset(snap, "people", fetch_size=16, cache_bytes=2500).preload()
    assert fetches == [16, 16]  # stops before the cache would overflow (16 documents: about 1100 bytes)


def test_spawned_worker_reconnects(snap) -> None:
    ds = SnapshotDataset(snap, "people", transform=Probe(snap))
    loader = DataLoader(ds, batch_size=25, num_workers=1, collate_fn=list, multiprocessing_context="spawn")
    items = [item for batch in loader for item in batch]
    assert sorted(i for i, _, _ in items) == list(range(50))
    assert {pid for _, pid, _ in items} == {items[0][2]} != {os.getpid()}


def test_iterable_streams_in_listing_order(snap, fetches) -> None:
    ds = SnapshotIterableDataset(snap, "people", page_size=8)
    order = [e.stem for e in snap.entries("people")]
    assert [str(d["_id"]) for d in ds] == order and len(ds) == 50
    assert fetches == [8] * 6 + [2]
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=list)
    assert [str(d["_id"]) for batch in loader for d in batch] == order
    with pytest.raises(NotFound):
        SnapshotIterableDataset(snap, "nope")


def test_a_model_trains_on_a_snapshot(snap) -> None:
    ds = SnapshotDataset(snap, "people", transform=lambda d: (torch.tensor([d["score"] / 5]), torch.tensor([2 * d["score"] / 5 + 1])))
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(15):
        for x, y in DataLoader(ds, batch_size=25, shuffle=True):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[-1] < losses[0] / 10
