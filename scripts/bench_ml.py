"""Training-loader benchmark: documents per second through a PyTorch ``DataLoader``
(batch 64, shuffled, ``collate_fn=list``), in one run, for

* ``api``:   ``argonfs.ml.torch.SnapshotDataset`` over a pinned bundle (the store API);
* ``mount``: a plain file ``Dataset`` (open, read, ``orjson.loads``) over the bundle's
  directory in a FUSE mount;
* ``local``: the same file ``Dataset`` over the same files on local disk (the ceiling);
* ``memfs``: the same again over scripts/memfs.py, an in-memory pyfuse3 filesystem
  serving those files: what any Python FUSE filesystem can reach with a file per item,
* ``shards``: ``argonfs.ml.torch.ShardFileDataset`` (a plain map-style dataset parsing a
  shard file on first access of its items) over the bundle's shard view in a mount,
  ``bundles/<id>/.shards/small/`` (docs/mount.md): 1000 documents a file;
* ``shards-local``: the same dataset over those shard files copied to local disk,

each with ``num_workers`` 0 and 2, cold and warm, as a ratio to local disk warm.

    .venv/bin/python scripts/bench_ml.py [--mongo URI] [--n 20000]

With no --mongo, an embedded SecantusDB server process in a temporary directory.

Cold includes building the dataset (the API's listing, the file list). ``api`` cold is
a new dataset (empty cache); warm is a second epoch with 0 workers, and with 2 workers a
new ``DataLoader`` over a dataset ``preload()``-ed in the parent (forked workers inherit
its cache). ``mount`` and ``memfs`` cold are a fresh mount; warm is the next epoch on
it; ``shards`` the same, on a mount of its own. ``local`` and ``shards-local`` cold drop the files' pages (``posix_fadvise(DONTNEED)``, these files
only: nothing else on the machine is touched). Every ``DataLoader`` with workers is new, so its
workers' start-up counts. Needs root (or fuse permissions) and /dev/fuse. Results:
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from bench_mount import Mounted, doc
from torch.utils.data import DataLoader, Dataset

from argonfs.ml import pin
from argonfs.ml.torch import ShardFileDataset, SnapshotDataset
from argonfs.store import Repository
from argonfs.store.db.mongo import client

BATCH = 64
ROOT = Path(__file__).resolve().parents[1]


class FileDataset(Dataset[Any]):
    """What a training script over files does: one JSON file an item."""

    def __init__(self, root: Path) -> None:
        self.paths = sorted(str(root / name) for name in os.listdir(root))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        with open(self.paths[index], "rb") as f:
            return orjson.loads(f.read())


def epoch(dataset: Any, workers: int) -> int:
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, collate_fn=list)
    return sum(len(batch) for batch in loader)


def rate(n: int, make: Any, workers: int) -> tuple[float, Any]:
    """Documents per second of one epoch over ``make()`` (timed with it); the dataset."""
    t = time.perf_counter()
    dataset = make()
    count = epoch(dataset, workers)
    assert count == n, (count, n)
    return n / (time.perf_counter() - t), dataset


def drop_pages(root: Path) -> None:
    os.sync()
    for name in os.listdir(root):
        fd = os.open(root / name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def run(uri: str, n: int, work: Path) -> dict[str, float]:
    name = f"bench_ml_{uuid.uuid4().hex[:8]}"
    repo = Repository.open(uri, name, author="bench")
    repo.init()
    env = dict(os.environ, ARGONFS_MONGO_URI=uri, ARGONFS_REPO=name, ARGONFS_HOME=str(work / "home"))
    out: dict[str, float] = {}
    try:
        repo.import_documents("main", "small", (doc(i) for i in range(n)))
        snap = pin("main", repo=repo)
        local = work / "local/small"
        local.mkdir(parents=True)
        for d in snap.documents("small"):
            (local / f"{d.stem}.json").write_bytes(d.rendered)
        list(snap.entries("small"))  # the listing checkpoint exists before anything is timed
        copied = work / "shards-local/small"  # the bundle's shard files, copied from the first shard mount

        for workers in (0, 2):
            drop_pages(local)
            out[f"local_cold_w{workers}"], _ = rate(n, lambda: FileDataset(local), workers)
            out[f"local_warm_w{workers}"], _ = rate(n, lambda: FileDataset(local), workers)

            out[f"api_cold_w{workers}"], ds = rate(n, lambda: SnapshotDataset(snap, "small"), workers)
            if workers:
                ds = SnapshotDataset(snap, "small").preload()
            out[f"api_warm_w{workers}"], _ = rate(n, lambda ds=ds: ds, workers)

            mem = work / f"mem-w{workers}"
            with Mounted([sys.executable, str(ROOT / "scripts/memfs.py"), str(local.parent), str(mem)], mem):
                out[f"memfs_cold_w{workers}"], _ = rate(n, lambda mem=mem: FileDataset(mem / "small"), workers)
                out[f"memfs_warm_w{workers}"], _ = rate(n, lambda mem=mem: FileDataset(mem / "small"), workers)

            mnt = work / f"mnt-w{workers}"
            with Mounted([sys.executable, "-m", "argonfs", "mount", "--foreground", str(mnt), "--ready-file"], mnt, env):
                root = mnt / f"bundles/{snap.bundle}/small"
                out[f"mount_cold_w{workers}"], _ = rate(n, lambda root=root: FileDataset(root), workers)
                out[f"mount_warm_w{workers}"], _ = rate(n, lambda root=root: FileDataset(root), workers)

            mnt = work / f"shards-w{workers}"
            with Mounted([sys.executable, "-m", "argonfs", "mount", "--foreground", str(mnt), "--ready-file"], mnt, env):
                shards = mnt / f"bundles/{snap.bundle}/.shards/small"
                out[f"shards_cold_w{workers}"], _ = rate(n, lambda shards=shards: ShardFileDataset(shards), workers)
                out[f"shards_warm_w{workers}"], _ = rate(n, lambda shards=shards: ShardFileDataset(shards), workers)
                if not copied.exists():
                    shutil.copytree(shards, copied)  # read through the mount, after its rows
            drop_pages(copied)
            out[f"shards-local_cold_w{workers}"], _ = rate(n, lambda: ShardFileDataset(copied), workers)
            out[f"shards-local_warm_w{workers}"], _ = rate(n, lambda: ShardFileDataset(copied), workers)
    finally:
        client(uri).drop_database(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo", help="MongoDB URI (default: an embedded SecantusDB server process in a temporary directory)")
    parser.add_argument("--n", type=int, default=20_000, help="small documents")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-ml-") as tmp:
        work = Path(tmp)
        if args.mongo:
            out = run(args.mongo, args.n, work)
        else:
            # a server process of its own (the embedded one), so the loaders in this
            # process do not share its interpreter lock with the server
            from argonfs.store.db.embedded import ensure_server, stop_server

            home = work / "server"
            try:
                out = run(ensure_server(home), args.n, work)
            finally:
                stop_server(home)
    print(f"{args.n} documents, batch {BATCH}, shuffled; documents per second and the ratio to local disk warm (same num_workers)")
    print(f"{'loader':12} {'workers':>7} {'cold/s':>9} {'warm/s':>9} {'cold/ref':>9} {'warm/ref':>9}")
    for workers in (0, 2):
        ref = out[f"local_warm_w{workers}"]
        for kind in ("local", "memfs", "api", "mount", "shards", "shards-local"):
            cold, warm = out[f"{kind}_cold_w{workers}"], out[f"{kind}_warm_w{workers}"]
            print(f"{kind:12} {workers:7} {cold:9.0f} {warm:9.0f} {cold / ref:9.2f} {warm / ref:9.2f}")
    print("goal: api and mount, cold and warm, >= 0.50 of local disk warm")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
