"""History benchmark: diff of two branches that differ in 1% of N documents, as a ratio
to a full scan of the collection, and the merge of those changes in documents/s, as a
ratio to plain puts, measured in the same run.

    .venv/bin/python scripts/bench_history.py [--mongo URI] [--n 50000] [--changed 0.01]

With no --mongo, an in-process SecantusDB server in a temporary directory is used.
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

from argonfs.store import Repository
from argonfs.store.db.mongo import client


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(uri: str, n: int, changed: float) -> dict[str, float]:
    name = f"bench_hist_{uuid.uuid4().hex[:8]}"
    repo = Repository.open(uri, name, author="bench")
    repo.init()
    try:
        repo.import_documents("main", "users", ({"_id": i, "name": f"user {i}", "score": i % 97} for i in range(n)))
        repo.create_branch("feature")
        step = max(1, int(1 / changed))
        k = 0
        for i in range(0, n, step):
            repo.put("feature", "users", {"_id": i, "name": f"user {i}", "score": -1})
            k += 1
        out = {"n": n, "changed": k}
        out["scan_s"] = timed(lambda: sum(1 for _ in repo.documents("feature", "users")), 1)
        out["listing_s"] = timed(lambda: sum(1 for _ in repo.entries("feature", "users")), 1)
        result: list = []
        out["diff_s"] = timed(lambda: result.append(repo.diff("main", "feature", "users")))
        assert len(result[-1]) == k, (len(result[-1]), k)
        out["diff_stat_s"] = timed(lambda: repo.diff("main", "feature", "users", fields=False))
        # merge throughput: the k changed documents into main, against k plain puts
        t = time.perf_counter()
        merged = repo.merge("feature", "main")
        out["merge_s"] = time.perf_counter() - t
        assert merged.updated == k and not merged.conflicts
        repo.create_branch("plain")
        t = time.perf_counter()
        for i in range(0, n, step):
            repo.put("plain", "users", {"_id": i, "name": f"user {i}", "score": -2})
        out["puts_s"] = time.perf_counter() - t
    finally:
        client(uri).drop_database(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    if args.mongo:
        out = run(args.mongo, args.n, args.changed)
    else:
        from secantus import SecantusDBServer

        with tempfile.TemporaryDirectory(prefix="argonfs-bench-") as path:
            server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=path)
            server.start()
            try:
                out = run(server.uri, args.n, args.changed)
            finally:
                server.stop()
    for key, value in out.items():
        print(f"{key:14} {value:10.3f}")
    print(f"\ndiff ({out['changed']} of {out['n']} changed) / full scan   {out['diff_s'] / out['scan_s']:.3f}   (goal <= 0.05)")
    print(f"diff --stat / full scan                       {out['diff_stat_s'] / out['scan_s']:.3f}")
    print(f"diff / listing without bodies                 {out['diff_s'] / out['listing_s']:.3f}")
    print(
        f"merge {out['changed']:.0f} documents: {out['changed'] / out['merge_s']:.0f} docs/s; plain puts {out['changed'] / out['puts_s']:.0f} docs/s; ratio {out['puts_s'] / out['merge_s']:.2f}"
    )


if __name__ == "__main__":
    main()
