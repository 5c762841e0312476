"""Soak test of the mount: 8 readers and 1 writer on one collection, 1 writer on another,
for --minutes, through one daemon.

    .venv/bin/python scripts/soak_mount.py [--minutes 10] [--mongo URI] [--docs 200]

Prints reads/s and writes/s, every error any worker saw (there must be none), and the
daemon's RSS sampled every 10 s; the memory verdict is the RSS at the end as a ratio to
the RSS after warm-up (the first fifth of the run), which must stay under 1.10.
With no --mongo, an in-process SecantusDB server in a temporary directory is used.
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mount import Mounted

from argonfs.store import Repository

READER = r"""
import os, sys, time, json
root, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
reads = errors = 0
while time.monotonic() < until:
    for name in os.listdir(root):
        try:
            with open(os.path.join(root, name), "rb") as f:
                json.loads(f.read())
            reads += 1
        except Exception as exc:
            errors += 1
            print("reader error:", name, repr(exc), file=sys.stderr, flush=True)
print(reads, errors)
"""

WRITER = r"""
import os, sys, time, random
root, until, docs = sys.argv[1], time.monotonic() + float(sys.argv[2]), int(sys.argv[3])
writes = errors = 0
rng = random.Random(os.getpid())
while time.monotonic() < until:
    i = rng.randrange(docs)
    try:
        with open(os.path.join(root, "%d.json" % i), "w") as f:
            f.write('{"_id": %d, "n": %d, "pad": "%s"}' % (i, writes, "x" * rng.randrange(500)))
        writes += 1
    except Exception as exc:
        errors += 1
        print("writer error:", i, repr(exc), file=sys.stderr, flush=True)
print(writes, errors)
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--mongo", help="MongoDB URI (default: an in-process SecantusDB)")
    parser.add_argument("--docs", type=int, default=200, help="documents per collection")
    args = parser.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="argonfs-soak-") as tmp:
        work = Path(tmp)
        server = None
        uri = args.mongo
        if uri is None:
            from secantus import SecantusDBServer

            server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(work / "db"))
            server.start()
            uri = server.uri
        name = f"soak_{uuid.uuid4().hex[:8]}"
        repo = Repository.open(uri, name, author="soak")
        repo.init()
        for coll in ("hot", "other"):
            repo.import_documents("main", coll, ({"_id": i, "n": 0} for i in range(args.docs)))
        env = dict(os.environ, ARGONFS_MONGO_URI=uri, ARGONFS_REPO=name, ARGONFS_HOME=str(work / "home"))
        mnt = work / "mnt"
        argv = [sys.executable, "-m", "argonfs", "mount", "--foreground", str(mnt), "--ready-file"]
        with Mounted(argv, mnt, env) as m:
            hot, other = mnt / "branches/main/hot", mnt / "branches/main/other"
            procs = [subprocess.Popen([sys.executable, "-c", READER, str(hot), str(seconds)], stdout=subprocess.PIPE, text=True) for _ in range(8)]
            writers = [
                subprocess.Popen([sys.executable, "-c", WRITER, str(d), str(seconds), str(args.docs)], stdout=subprocess.PIPE, text=True) for d in (hot, other)
            ]
            samples: list[tuple[float, float]] = []
            start = time.monotonic()
            while any(p.poll() is None for p in [*procs, *writers]):
                samples.append((time.monotonic() - start, rss_mb(m.proc.pid)))
                print(f"{samples[-1][0]:6.0f} s  daemon RSS {samples[-1][1]:6.1f} MB", flush=True)
                time.sleep(10)
            reads = [tuple(map(int, p.communicate(timeout=60)[0].split())) for p in procs]
            writes = [tuple(map(int, p.communicate(timeout=60)[0].split())) for p in writers]
            log = m.mountpoint.with_name(m.mountpoint.name + ".log")
        if server is not None:
            server.stop()
    elapsed = seconds
    total_reads, read_errors = sum(r[0] for r in reads), sum(r[1] for r in reads)
    total_writes, write_errors = sum(w[0] for w in writes), sum(w[1] for w in writes)
    warm = next(rss for t, rss in samples if t >= seconds / 5) if samples and samples[-1][0] >= seconds / 5 else samples[0][1]
    end = samples[-1][1]
    print(f"reads: {total_reads} ({total_reads / elapsed:.0f}/s), errors {read_errors}")
    print(f"writes: {total_writes} ({total_writes / elapsed:.1f}/s), errors {write_errors}")
    print(
        f"daemon RSS: {samples[0][1]:.1f} MB at start, {warm:.1f} MB after warm-up, {end:.1f} MB at the end, "
        f"max {max(s[1] for s in samples):.1f} MB; end / warm-up = {end / warm:.3f}"
    )
    print(f"daemon log: {log} (removed with the temporary directory)")
    ok = read_errors == 0 and write_errors == 0 and end / warm < 1.10
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
