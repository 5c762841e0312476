"""Live capture: lag under a steady load, and throughput against its two baselines.

    .venv/bin/python scripts/bench_capture.py [--n 20000] [--rate 500] [--seconds 20] [--json]

The source and the store are SecantusDB servers in processes of their own on loopback:
the store durable and syncing on commit (as the embedded default runs), the source
durable without an fsync per commit (a synced insert takes about 2.3 ms here, so one
server could not take 500 single writes a second, and the application's fsyncs are not
the capture's cost).

- **throughput**: ``--n`` inserts wait in the source's change stream; then, in one run,
  the same stream is drained without storing anything (the ceiling), captured
  (``Capture`` with ``once``), and the same documents are imported from the source
  (``Repository.import_documents``, as ``argonfs import mongodb://...`` does).  Printed as
  events/s and as ratios: capture / drain, capture / import (goal >= 0.8).
- **lag**: ``argonfs capture`` runs as a process of its own, following, while this
  script writes ``--rate`` documents per second for ``--seconds``, each stamped with its
  write time; the lag of a write is the time of the commit record that made its version
  visible minus that stamp.  Printed as p50 / p99 / max (goal: p99 under 1 s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import server_process

from argonfs.capture import Capture, Options, parse_source
from argonfs.store import Repository


def _doc(i: int) -> dict[str, Any]:
    return {"_id": i, "name": f"user {i}", "score": i % 97, "tags": ["a", "b", str(i % 7)], "profile": {"city": f"c{i % 50}", "age": 20 + i % 60}}


def _insert(coll: Any, n: int, start: int = 0) -> None:
    for lo in range(start, start + n, 1000):
        coll.insert_many([_doc(i) for i in range(lo, min(start + n, lo + 1000))], ordered=False)


def _capture(repo: Repository, uri: str, branch: str, batch_size: int, bulk_min: int = 1000) -> float:
    t = time.perf_counter()
    Capture(repo, parse_source(uri), branch, Options(once=True, batch_size=batch_size, bulk_min=bulk_min), lambda _: None).run()
    return time.perf_counter() - t


def throughput(source: pymongo.MongoClient, source_uri: str, store_uri: str, n: int, batch_size: int) -> dict[str, float]:
    db = source["thru"]
    uri = f"{source_uri.rstrip('/')}/thru"
    repo = Repository.open(store_uri, "bench_thru", author="bench")
    repo.init()
    db.create_collection("c")
    _capture(repo, uri, "live", batch_size)  # the first copy, of nothing: the stream's point is now
    token = repo.db["captures"].find_one({"_id": "live"})["pos"]["token"]
    _insert(db.c, n)

    t = time.perf_counter()
    drained = 0
    with db.watch(full_document="updateLookup", full_document_before_change="whenAvailable", max_await_time_ms=100, start_after=token) as stream:
        while drained < n:
            if stream.try_next() is not None:
                drained += 1
    drain_s = time.perf_counter() - t

    capture_s = _capture(repo, uri, "live", batch_size)
    assert len(list(repo.entries("live", "c"))) == n

    repo.create_branch("imported", empty=True)
    t = time.perf_counter()
    counts = repo.import_documents("imported", "c", db.c.find().sort("_id", 1).batch_size(1000))
    import_s = time.perf_counter() - t
    assert counts.added == n
    return {
        "events": n,
        "drain_s": drain_s,
        "capture_s": capture_s,
        "import_s": import_s,
        "drain_per_s": n / drain_s,
        "capture_per_s": n / capture_s,
        "import_per_s": n / import_s,
        "capture_over_drain": drain_s / capture_s,
        "capture_over_import": import_s / capture_s,
    }


def _write(source_uri: str, k: int, writers: int, total: int, rate: int, t0: float) -> None:
    """Writer ``k`` of ``writers``: every ``writers``-th document, each at its due time."""
    c = pymongo.MongoClient(source_uri)["lag"]["c"]
    for i in range(k, total, writers):
        pause = t0 + i / rate - time.time()
        if pause > 0:
            time.sleep(pause)
        c.insert_one({"_id": i, "w": time.time(), "payload": "x" * 200})


def lag(source: pymongo.MongoClient, source_uri: str, store_uri: str, rate: int, seconds: float) -> dict[str, float]:
    db = source["lag"]
    uri = f"{source_uri.rstrip('/')}/lag"
    db.create_collection("c")
    env = {**os.environ, "ARGONFS_MONGO_URI": store_uri, "ARGONFS_REPO": "bench_lag"}
    subprocess.run([sys.executable, "-m", "argonfs", "init"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "argonfs", "capture", uri, "--branch", "live", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    repo = Repository.open(store_uri, "bench_lag", author="bench")
    try:
        while (repo.db["captures"].find_one({"_id": "live"}) or {}).get("state") != "following":
            if proc.poll() is not None:
                raise SystemExit(f"the capture exited: {proc.communicate()[1]}")
            time.sleep(0.05)
        total = int(rate * seconds)
        writers = 4  # processes of their own: one client's round trips cannot keep up
        t0 = time.time() + 2.0  # time for the writers to start
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_write, args=(source_uri, k, writers, total, rate, t0)) for k in range(writers)]
        for w in procs:
            w.start()
        for w in procs:
            w.join()
        wrote_s = time.time() - t0
        deadline = time.time() + 120
        while (repo.db["captures"].find_one({"_id": "live"}) or {}).get("events", 0) < total:
            if time.time() > deadline:
                raise SystemExit("the capture did not catch up within 120 s")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    bid = repo.branch("live").id
    versions = repo.db["versions"]
    committed = {r["k"]: r["t"].replace(tzinfo=UTC).timestamp() for r in versions.find({"b": bid, "c": "", "op": "commit"}, {"k": 1, "t": 1})}
    lags = sorted(committed[r["x"]] - r["d"]["w"] for r in versions.find({"b": bid, "c": "c"}, {"x": 1, "d.w": 1}))
    q = statistics.quantiles(lags, n=100)
    return {"writes": total, "rate_achieved": total / wrote_s, "lag_p50_s": q[49], "lag_p99_s": q[98], "lag_max_s": lags[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="events for the throughput runs")
    parser.add_argument("--rate", type=int, default=500, help="writes per second for the lag run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the lag run")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        src_proc, source_uri = server_process.start(a, sync=False)  # the application's server: its fsyncs are not the capture's cost
        store_proc, store_uri = server_process.start(b)
        try:
            source: pymongo.MongoClient = pymongo.MongoClient(source_uri)
            result = {"load_before": os.getloadavg()[0]}
            result.update(throughput(source, source_uri, store_uri, args.n, args.batch_size))
            result.update(lag(source, source_uri, store_uri, args.rate, args.seconds))
            result["load_after"] = os.getloadavg()[0]
        finally:
            for p in (src_proc, store_proc):
                p.terminate()
                p.wait(timeout=60)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"load average {result['load_before']:.2f} -> {result['load_after']:.2f}")
    print(f"throughput, {args.n} inserts waiting in the stream:")
    print(f"  drain without storing   {result['drain_per_s']:9.0f} events/s  ({result['drain_s']:.2f} s)")
    print(f"  capture                 {result['capture_per_s']:9.0f} events/s  ({result['capture_s']:.2f} s)")
    print(f"  import of the same docs {result['import_per_s']:9.0f} docs/s    ({result['import_s']:.2f} s)")
    print(f"  capture / drain         {result['capture_over_drain']:9.2f}")
    print(f"  capture / import        {result['capture_over_import']:9.2f}   (goal >= 0.8)")
    print(f"lag, {result['writes']} writes at {result['rate_achieved']:.0f}/s (asked {args.rate}/s):")
    print(f"  p50 {result['lag_p50_s'] * 1000:.0f} ms, p99 {result['lag_p99_s'] * 1000:.0f} ms (goal < 1000), max {result['lag_max_s'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
