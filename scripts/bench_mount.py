"""Mount benchmark: reading, listing and writing through the FUSE mount, each as a
ratio to a baseline measured in the same run.

    .venv/bin/python scripts/bench_mount.py [--mongo URI] [--n 2000] [--big 100000] [--rounds 3]

* cold/warm reads of N small documents: files/s, against an in-memory pyfuse3
  filesystem serving the same bytes (scripts/memfs.py) and a direct pymongo scan;
  --rounds fresh mounts of each, interleaved, read cold once and warm --rounds times,
  medians shown;
* ``ls -l`` of a collection of --big documents (seconds), in a bundle, in a branch, and in
  a branch forked after the import with 1% of the documents changed through the store
  API, against ``ls -l`` of the same names and sizes on scripts/memfs.py and against
  listing the collection through the store API;
* ``cp -r`` of N documents into a branch, against ``Repository.put`` of each, in
  --rounds alternating rounds (the median of their ratios);
* the daemon's peak RSS after listing and reading the --big collection.

With no --mongo, an in-process SecantusDB server in a temporary directory is used.
Needs root (or fuse permissions) and /dev/fuse.  Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from argonfs.store import Repository

ROOT = Path(__file__).resolve().parents[1]

READER = r"""
import os, sys, time
root = sys.argv[1]
t = time.perf_counter()
n = 0
for name in os.listdir(root):
    with open(os.path.join(root, name), "rb") as f:
        f.read()
    n += 1
print(n, time.perf_counter() - t)
"""


def read_all(path: Path) -> float:
    """Files per second reading every file of a directory, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", READER, str(path)], check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]) / float(out[1])


class Mounted:
    def __init__(self, argv: list[str], mountpoint: Path, env: dict[str, str] | None = None) -> None:
        self.mountpoint = mountpoint
        mountpoint.mkdir(parents=True, exist_ok=True)
        ready = mountpoint.with_name(mountpoint.name + ".ready")
        ready.unlink(missing_ok=True)
        self.log = open(mountpoint.with_name(mountpoint.name + ".log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([*argv, str(ready)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mount failed: {argv}")
            time.sleep(0.02)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def __enter__(self) -> Mounted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            if os.path.ismount(self.mountpoint):
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


def doc(i: int) -> dict:
    return {"_id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": i % 97, "tags": ["a", "b", str(i % 13)]}


def changed_doc(i: int) -> dict:
    """``doc(i)`` changed, at the same size."""
    return {**doc(i), "name": f"USER {i}"}


def ls_l(path: Path) -> float:
    """Seconds for ``ls -l`` of a directory."""
    t = time.perf_counter()
    subprocess.run(["ls", "-l", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def run(uri: str, n: int, big: int, work: Path, rounds: int) -> dict[str, float]:
    name = f"bench_mount_{uuid.uuid4().hex[:8]}"
    repo = Repository.open(uri, name, author="bench")
    repo.init()
    env = dict(os.environ, ARGONFS_MONGO_URI=uri, ARGONFS_REPO=name, ARGONFS_HOME=str(work / "home"))
    argonfs = [sys.executable, "-m", "argonfs", "mount", "--foreground"]

    def mount(tag: str) -> Mounted:
        mnt = work / f"mnt-{tag}"
        return Mounted([*argonfs, str(mnt), "--ready-file"], mnt, env)

    out: dict[str, float] = {}
    try:
        repo.import_documents("main", "small", (doc(i) for i in range(n)))
        bundle = repo.create_bundle("main", "bench").id
        src = work / "src/small"
        src.mkdir(parents=True)
        for d in repo.documents(bundle, "small"):
            (src / f"{d.stem}.json").write_bytes(d.rendered)

        # reads: rounds of (memfs, bundle, branch), each a fresh mount read cold and then
        # warm; medians, so one slow pass on a noisy machine does not decide a ratio
        reads: dict[str, list[float]] = {}
        mem = work / "mnt-mem"
        sides = [
            ("memfs", lambda: Mounted([sys.executable, str(ROOT / "scripts/memfs.py"), str(work / "src"), str(mem)], mem), "small"),
            ("bundle", lambda: mount("bundle"), f"bundles/{bundle}/small"),
            ("branch", lambda: mount("branch"), "branches/main/small"),
        ]
        for _ in range(rounds):
            for side, start, rel in sides:
                with start() as m:
                    reads.setdefault(f"{side}_cold", []).append(read_all(m.mountpoint / rel))
                    reads.setdefault(f"{side}_warm", []).extend(read_all(m.mountpoint / rel) for _ in range(rounds))
        out.update((key, statistics.median(values)) for key, values in reads.items())
        t = time.perf_counter()
        count = sum(len(d.rendered) > 0 for d in repo.documents(bundle, "small"))
        out["pymongo_scan"] = count / (time.perf_counter() - t)

        # writes: rounds of (Repository.put of each document, cp -r of them into a branch),
        # each into a collection of its own; the median of the rounds' ratios
        repo.create_branch("w")
        ratios, puts, copies = [], [], []
        for i in range(rounds):
            t = time.perf_counter()
            for j in range(n):
                repo.put("w", f"api{i}", doc(j))
            puts.append(time.perf_counter() - t)
            with mount("write") as m:
                t = time.perf_counter()
                subprocess.run(["cp", "-r", str(src), str(m.mountpoint / f"branches/w/copied{i}")], check=True)
                copies.append(time.perf_counter() - t)
            assert sum(1 for _ in repo.entries("w", f"copied{i}")) == n
            ratios.append(puts[-1] / copies[-1])
        out["api_put_s"] = statistics.median(puts)
        out["cp_r_s"] = statistics.median(copies)
        out["cp_r_ratio"] = statistics.median(ratios)

        if big:
            t = time.perf_counter()
            repo.import_documents("main", "big", (doc(i) for i in range(big)))
            out["big_import_s"] = time.perf_counter() - t
            big_bundle = repo.create_bundle("main", "big").id
            t = time.perf_counter()
            listed = sum(1 for _ in repo.entries("main", "big"))
            out["store_list_big_s"] = time.perf_counter() - t
            assert listed == big
            # the baseline: the same names and sizes served from memory
            srcbig = work / "srcbig/big"
            srcbig.mkdir(parents=True)
            for d in repo.documents(big_bundle, "big"):
                (srcbig / f"{d.stem}.json").write_bytes(d.rendered)
            membig = work / "mnt-membig"
            with Mounted([sys.executable, str(ROOT / "scripts/memfs.py"), str(srcbig.parent), str(membig)], membig):
                out["memfs_ls_l_big_s"] = ls_l(membig / "big")
            with mount("bigbundle") as m:
                out["ls_l_big_bundle_s"] = ls_l(m.mountpoint / f"bundles/{big_bundle}/big")
            with mount("big") as m:
                out["ls_l_big_s"] = ls_l(m.mountpoint / "branches/main/big")
                out["big_read_files_s"] = read_all(m.mountpoint / "branches/main/big")
                out["daemon_peak_rss_mb"] = m.peak_rss_mb()
            # a branch forked after the import, 1% of its documents changed since
            repo.create_branch("changed")
            step = 100
            t = time.perf_counter()
            for i in range(0, big, step):
                repo.put("changed", "big", changed_doc(i))
            out["changed_puts"] = len(range(0, big, step))
            out["changed_put_s"] = time.perf_counter() - t
            with mount("bigchanged") as m:
                out["ls_l_big_changed_s"] = ls_l(m.mountpoint / "branches/changed/big")
    finally:
        from argonfs.store.db.mongo import client

        client(uri).drop_database(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo", help="MongoDB URI (default: an in-process SecantusDB)")
    parser.add_argument("--n", type=int, default=2000, help="small documents read and written")
    parser.add_argument("--big", type=int, default=100_000, help="documents listed with ls -l (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the read and write measurements, whose medians are shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-") as tmp:
        work = Path(tmp)
        if args.mongo:
            out = run(args.mongo, args.n, args.big, work, args.rounds)
        else:
            from secantus import SecantusDBServer

            server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(work / "db"))
            server.start()
            try:
                out = run(server.uri, args.n, args.big, work, args.rounds)
            finally:
                server.stop()
    for key, value in out.items():
        print(f"{key:22} {value:12.2f}")
    print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"cold read, bundle / memfs      {out['bundle_cold'] / out['memfs_cold']:.2f}   (goal >= 0.80)")
    print(f"cold read, branch / memfs      {out['branch_cold'] / out['memfs_cold']:.2f}")
    print(f"warm read, bundle / memfs warm {out['bundle_warm'] / out['memfs_warm']:.2f}   (goal >= 1.00)")
    print(f"warm read, branch / memfs warm {out['branch_warm'] / out['memfs_warm']:.2f}")
    print(f"cold read, bundle / pymongo    {out['bundle_cold'] / out['pymongo_scan']:.2f}")
    print(f"cp -r / Repository.put         {out['cp_r_ratio']:.2f}   (goal >= 0.80; median of the rounds' ratios)")
    if "ls_l_big_s" in out:
        print(f"ls -l of {args.big} documents    {out['ls_l_big_s']:.2f} s in a branch, {out['ls_l_big_bundle_s']:.2f} s in a bundle (goal <= 3 s)")
        print(
            f"  listing them through the store API alone: {out['store_list_big_s']:.2f} s; ls -l / store: {out['ls_l_big_s'] / out['store_list_big_s']:.2f} (branch), {out['ls_l_big_bundle_s'] / out['store_list_big_s']:.2f} (bundle)"
        )
        memfs = out["memfs_ls_l_big_s"]
        print(f"ls -l, memfs / bundle          {memfs / out['ls_l_big_bundle_s']:.2f}   (goal >= 0.50; memfs {memfs:.2f} s)")
        print(f"ls -l, memfs / branch          {memfs / out['ls_l_big_s']:.2f}")
        print(
            f"ls -l, memfs / branch, 1% changed {memfs / out['ls_l_big_changed_s']:.2f}   (goal >= 0.50 and <= 3 s: {out['ls_l_big_changed_s']:.2f} s; {out['changed_puts']:.0f} documents changed)"
        )
        print(f"daemon peak RSS                {out['daemon_peak_rss_mb']:.0f} MB (goal <= 300 MB)")


if __name__ == "__main__":
    main()
