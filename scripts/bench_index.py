"""What a secondary index costs an insert on the server: version-shaped records inserted
in batches of 1000 into collections with no secondary index (the baseline), argonfs's
key index, other shapes of one index, and a partial index that the records fall outside
of, each printed as a ratio to the baseline, all in one run.

    .venv/bin/python scripts/bench_index.py [--mongo URI] [--n 10000] [--rounds 2]

With no --mongo, SecantusDB runs in a separate process (durable, syncing on commit), so
the client's work is not counted in the server's.  Results: docs/benchmarks.md, "Scale
(issue 12)".
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import server_process
from bson.objectid import ObjectId
from pymongo import MongoClient

#: name -> (index keys, extra options, whether the records carry the key as ``k``)
SHAPES: dict[str, tuple[list[tuple[str, int]], dict[str, Any], bool]] = {
    "no secondary index": ([], {}, True),
    "key index (b, c, k, s desc)": ([("b", 1), ("c", 1), ("k", 1), ("s", -1)], {}, True),
    "(b, c, k)": ([("b", 1), ("c", 1), ("k", 1)], {}, True),
    "(b)": ([("b", 1)], {}, True),
    "partial (b, c, k, s desc), k absent": ([("b", 1), ("c", 1), ("k", 1), ("s", -1)], {"partialFilterExpression": {"k": {"$exists": True}}}, False),
}


def records(n: int, keyed: bool) -> list[dict[str, Any]]:
    bid, t = ObjectId(), datetime.now(UTC).replace(tzinfo=None)
    out = []
    for i in range(n):
        rec = {"_id": f"{bid}:{i + 1}", "b": bid, "s": i + 1, "c": "users", "op": "put", "a": "bench", "t": t, "z": 50, "h": "0" * 32}
        rec["k" if keyed else "bk"] = str(i)
        rec["d"] = {"_id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": i % 97}
        out.append(rec)
    return out


def run(uri: str, n: int, rounds: int) -> dict[str, list[float]]:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, w="majority", journal=True)
    out: dict[str, list[float]] = {name: [] for name in SHAPES}
    try:
        for _ in range(rounds):
            for name, (keys, options, keyed) in SHAPES.items():
                db = client[f"bench_index_{uuid.uuid4().hex[:8]}"]
                if keys:
                    db["v"].create_index(keys, **options)
                payload = records(n, keyed)
                t = time.perf_counter()
                for i in range(0, n, 1000):
                    db["v"].insert_many(payload[i : i + 1000], ordered=True)
                out[name].append(time.perf_counter() - t)
                client.drop_database(db.name)
    finally:
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo", help="MongoDB URI (default: SecantusDB in a separate process)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-index-") as tmp:
        uri = args.mongo
        if uri is None:
            server, uri = server_process.start(tmp)
        try:
            results = run(uri, args.n, args.rounds)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
    base = min(results["no secondary index"])
    print(f"{args.n} version records per collection, best of {args.rounds} rounds, batches of 1000")
    for name, times in results.items():
        best = min(times)
        print(f"  {name:40s} {best:7.2f} s  {args.n / best:8.0f} records/s  x{best / base:.2f} the baseline")


if __name__ == "__main__":
    main()
