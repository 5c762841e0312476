"""Remote mount benchmark: ``argonfs mount --remote`` over a local remote, counting the
object-store requests the daemon makes.

    .venv/bin/python scripts/bench_remote.py [--n 2000] [--big 100000] [--latency-ms 0]

A repository gets N small documents and --big documents in two collections, one bundle,
pushed to a remote in a temporary directory.  Each measurement mounts it afresh, with
an empty cache (unless it says "cached"), in a daemon whose object store is wrapped to
count requests (GET: whole objects and byte ranges; LIST) and, with --latency-ms, to
wait that long before each one, like a bucket far away:

* ``ls -l`` of the --big collection (goal <= 3 s);
* a cold read of the N small documents, one process reading them in listing order;
* reading all --big documents in listing order (goal <= 200 GETs), then again with the
  on-disk cache of that run (a new mount); the daemon's peak RSS.

With no --mongo, an in-process SecantusDB server in a temporary directory is used.
Needs root (or fuse permissions) and /dev/fuse.  Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from argonfs.remote.format import Remote
from argonfs.remote.objects import open_store
from argonfs.remote.push import push_bundle
from argonfs.store import Repository

#: runs the CLI in the daemon with its object store wrapped: every request is a line in
#: $BENCH_REQUESTS, after $BENCH_LATENCY_MS
DAEMON = r"""
import os, sys, threading, time
import argonfs.remote.objects as objects

log = open(os.environ["BENCH_REQUESTS"], "a", buffering=1)
lock = threading.Lock()
delay = float(os.environ.get("BENCH_LATENCY_MS", "0")) / 1000

class Counting:
    def __init__(self, inner):
        self.inner, self.url = inner, inner.url
    def _note(self, op, key):
        if delay:
            time.sleep(delay)
        with lock:
            log.write(f"{op} {key}\n")
    def get(self, key):
        self._note("GET", key)
        return self.inner.get(key)
    def get_range(self, key, start, length):
        self._note("GET", f"{key}@{start}")
        return self.inner.get_range(key, start, length)
    def list(self, prefix):
        self._note("LIST", prefix)
        return self.inner.list(prefix)
    def put_if_absent(self, key, data):
        self._note("PUT", key)
        return self.inner.put_if_absent(key, data)
    def delete(self, key):
        self._note("DELETE", key)
        return self.inner.delete(key)

opened = objects.open_store
objects.open_store = lambda url: Counting(opened(url))
from argonfs.cli import main
sys.argv[0] = "argonfs"
main()
"""

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


def doc(i: int) -> dict:
    return {"_id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": i % 97, "tags": ["a", "b", str(i % 13)]}


class Mounted:
    """A remote mount whose daemon counts its requests; a fresh cache unless ``home`` is reused."""

    def __init__(self, remote: Path, work: Path, tag: str, latency_ms: float, home: Path | None = None) -> None:
        self.mountpoint = work / f"mnt-{tag}"
        self.mountpoint.mkdir()
        self.home = home or work / f"home-{tag}"
        self.requests = work / f"requests-{tag}.log"
        ready = work / f"ready-{tag}"
        env = dict(os.environ, ARGONFS_HOME=str(self.home), BENCH_REQUESTS=str(self.requests), BENCH_LATENCY_MS=str(latency_ms))
        env["ARGONFS_MONGO_URI"] = "mongodb://127.0.0.1:1"  # no MongoDB for a remote mount
        self.log = open(work / f"mount-{tag}.log", "wb")  # noqa: SIM115
        argv = [sys.executable, "-c", DAEMON, "mount", "--foreground", "--ready-file", str(ready), "--remote", str(remote), str(self.mountpoint)]
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mount failed, see {self.log.name}")
            time.sleep(0.02)
        self._seen = 0

    def counts(self) -> collections.Counter[str]:
        """Requests since the last call, by kind."""
        lines = self.requests.read_text().splitlines() if self.requests.exists() else []
        new, self._seen = lines[self._seen :], len(lines)
        return collections.Counter(line.split()[0] for line in new)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def __enter__(self) -> Mounted:
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["fusermount3", "-u", str(self.mountpoint)], check=False)
        try:
            self.proc.wait(timeout=30)
        finally:
            if os.path.ismount(self.mountpoint):
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


def read_all(path: Path) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", READER, str(path)], check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1])


def publish(uri: str, n: int, big: int, remote: Path) -> str:
    """Push a bundle of N small and --big documents to ``remote``; its id."""
    name = f"bench_remote_{uuid.uuid4().hex[:8]}"
    repo = Repository.open(uri, name, author="bench")
    repo.init()
    try:
        repo.import_documents("main", "small", (doc(i) for i in range(n)))
        if big:
            repo.import_documents("main", "big", (doc(i) for i in range(big)))
        bundle = repo.create_bundle("main", "bench", label="prod").id
        remote.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        report = push_bundle(repo, Remote(open_store(str(remote))), bundle, label="prod")
        print(
            f"pushed {report.documents} documents in {time.perf_counter() - t:.0f} s: {report.objects_uploaded} objects, {report.bytes_uploaded / 2**20:.1f} MiB"
        )
        return bundle
    finally:
        from argonfs.store.mongo import client

        client(uri).drop_database(name)


def run(remote: Path, bundle: str, big: int, latency_ms: float, work: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    tree = f"bundles/{bundle}"

    def requests(c: collections.Counter[str]) -> str:
        return f"{c['GET']} GET, {c['LIST']} LIST"

    with Mounted(remote, work, "small", latency_ms) as m:
        m.counts()
        count, seconds = read_all(m.mountpoint / tree / "small")
        rows.append((f"cold read of {count} small documents", f"{seconds:.2f} s, {count / seconds:.0f} files/s, {requests(m.counts())}"))
        count, seconds = read_all(m.mountpoint / tree / "small")
        rows.append((f"warm read of {count} small documents", f"{seconds:.2f} s, {count / seconds:.0f} files/s, {requests(m.counts())}"))
    if big:
        with Mounted(remote, work, "ls", latency_ms) as m:
            m.counts()
            t = time.perf_counter()
            subprocess.run(["ls", "-l", str(m.mountpoint / tree / "big")], check=True, stdout=subprocess.DEVNULL)
            rows.append((f"ls -l of {big} documents, cold", f"{time.perf_counter() - t:.2f} s, {requests(m.counts())}"))
            t = time.perf_counter()
            subprocess.run(["ls", "-l", str(m.mountpoint / tree / "big")], check=True, stdout=subprocess.DEVNULL)
            rows.append((f"ls -l of {big} documents, again", f"{time.perf_counter() - t:.2f} s, {requests(m.counts())}"))
        with Mounted(remote, work, "big", latency_ms) as m:
            m.counts()
            count, seconds = read_all(m.mountpoint / tree / "big")
            rows.append((f"reading all {count} documents, cold", f"{seconds:.2f} s, {count / seconds:.0f} files/s, {requests(m.counts())}"))
            rows.append(("daemon peak RSS", f"{m.peak_rss_mb():.0f} MB"))
            home = m.home
        with Mounted(remote, work, "big-cached", latency_ms, home=home) as m:
            m.counts()
            count, seconds = read_all(m.mountpoint / tree / "big")
            rows.append(("again, new mount, disk cache kept", f"{seconds:.2f} s, {count / seconds:.0f} files/s, {requests(m.counts())}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo", help="MongoDB URI for the pushing repository (default: an in-process SecantusDB)")
    parser.add_argument("--n", type=int, default=2000, help="small documents read cold")
    parser.add_argument("--big", type=int, default=100_000, help="documents listed with ls -l and read (0: skip)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait this long before every object-store request")
    parser.add_argument("--remote-dir", type=Path, help="keep the remote here, and reuse one a previous run left (pushing takes minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-remote-") as tmp:
        work = Path(tmp)
        remote = args.remote_dir or work / "remote"
        if (remote / "argonfs-remote.json").exists():
            bundle = Remote(open_store(str(remote))).label("prod").bundle or ""
        elif args.mongo:
            bundle = publish(args.mongo, args.n, args.big, remote)
        else:
            from secantus import SecantusDBServer

            server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(work / "db"))
            server.start()
            try:
                bundle = publish(server.uri, args.n, args.big, remote)
            finally:
                server.stop()
        rows = run(remote, bundle, args.big, args.latency_ms, work)
    print(f"remote mount, object-store latency {args.latency_ms:g} ms per request")
    for label, value in rows:
        print(f"  {label:42} {value}")


if __name__ == "__main__":
    main()
