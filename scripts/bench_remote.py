"""Remote benchmark: push, pull and ``argonfs mount --remote`` over a local directory,
fake-gcs-server and moto's S3 server, each against a baseline measured in the same run.

    .venv/bin/python scripts/bench_remote.py [--backend local|gcs|s3|all] [--n 2000] [--big 100000]
        [--changed 0.01] [--latency-ms 0] [--remote-dir DIR] [--skip-read-all] [--skip-mounts] [--mongo URI]

One repository (with no --mongo, an in-process SecantusDB server in a temporary
directory) gets N small and --big documents in two collections, frozen as bundle 1;
then --changed of the big documents are rewritten and frozen as bundle 2.  Bundle 1 is
exported to a directory (the pull baseline's source; its time is the store's body-read
rate, which bounds a push).  The emulators run in child processes (scripts/emulators.py).
Per backend, on a fresh remote (a bucket for gcs/s3):

* push of bundle 1, against uploading the same number of bytes as 8 MiB objects through
  the same client, two in flight (a push keeps at most two pack uploads in flight);
  objects written (goal: time ratio >= 0.5, <= 200 objects);
* push of bundle 2 (a delta over bundle 1): bytes uploaded / the first push's (goal <= 2%);
* the feature-branch push: the first push of a bundle of branch ``feature``, forked from
  bundle 1 with --changed of the big documents changed (others than bundle 2's), pushed
  after bundles 1 and 2: bytes uploaded / the first push's (goal <= 3%);
* pull of bundle 1 into a fresh repository, against importing the exported directory
  into another fresh repository (``directory_sources`` + ``import_documents``, measured
  once per run) (goal >= 0.8);
* mounts, each a fresh daemon with an empty cache unless it says otherwise, whose object
  store is wrapped to count requests (GET: whole objects and byte ranges; LIST) and, with
  --latency-ms, to wait that long before each one, like a bucket far away:
  a cold read of the N small documents (one process reading them in listing order), as a
  ratio to scripts/memfs.py serving the same files, measured just before (goal >= 0.5);
  the same memfs mount's ``ls -l`` of the --big collection, a floor for the next line;
  ``ls -l`` of the --big collection, cold and again, and of bundle 2's (two layers) (goal <= 3 s);
  reading all --big documents (goal <= 200 GETs), then again with the on-disk cache of
  that run (a new mount); the daemon's peak RSS.

With --remote-dir, the local remote is kept there; a later run that finds it measures
the mounts only (no MongoDB, no push or pull), copying it into the emulators' buckets.
Needs root (or fuse permissions) and /dev/fuse.  Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from argonfs.remote.format import PACK_TARGET
from argonfs.remote.objects import open_store
from argonfs.remote.pull import pull
from argonfs.remote.push import push_bundle
from argonfs.remote.reading import Remote
from argonfs.store import Repository
from argonfs.store.repo.transfer import directory_sources, export_to_directory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulators import Emulator

ROOT = Path(__file__).resolve().parents[1]

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


def doc(i: int, changed: bool = False) -> dict:
    d = {"_id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": i % 97, "tags": ["a", "b", str(i % 13)]}
    if changed:
        d["score"] = -1
    return d


class Mounted:
    """A remote mount whose daemon counts its requests; a fresh cache unless ``home`` is reused."""

    def __init__(self, remote: str, work: Path, tag: str, latency_ms: float, env: dict[str, str], home: Path | None = None) -> None:
        self.mountpoint = work / f"mnt-{tag}"
        self.mountpoint.mkdir()
        self.home = home or work / f"home-{tag}"
        self.requests = work / f"requests-{tag}.log"
        ready = work / f"ready-{tag}"
        env = dict(os.environ, **env, ARGONFS_HOME=str(self.home), BENCH_REQUESTS=str(self.requests), BENCH_LATENCY_MS=str(latency_ms))
        env["ARGONFS_MONGO_URI"] = "mongodb://127.0.0.1:1"  # no MongoDB for a remote mount
        self.log = open(work / f"mount-{tag}.log", "wb")  # noqa: SIM115
        argv = [sys.executable, "-c", DAEMON, "mount", "--foreground", "--ready-file", str(ready), "--remote", remote, str(self.mountpoint)]
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


class MemFS:
    """scripts/memfs.py serving ``source`` (one level of subdirectories) at ``mountpoint``."""

    def __init__(self, source: Path, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        mountpoint.mkdir()
        ready = mountpoint.with_name(mountpoint.name + ".ready")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/memfs.py"), str(source), str(mountpoint), str(ready)])
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("memfs failed")
            time.sleep(0.02)

    def __enter__(self) -> MemFS:
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


def read_all(path: Path) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", READER, str(path)], check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1])


def ls_l(path: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["ls", "-l", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


@dataclass
class Results:
    """What one run measured: per backend, (label, value, goal verdict) rows."""

    rows: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def add(self, backend: str, label: str, value: str, verdict: str = "") -> None:
        self.rows.setdefault(backend, []).append((label, value, verdict))
        print(f"[{backend}] {label}: {value} {verdict}", flush=True)


def verdict(ok: bool, goal: str) -> str:
    return f"(goal {goal}: {'met' if ok else 'NOT MET'})"


@dataclass
class Source:
    """The repository side of a run: bundles 1 and 2, bundle 1 exported, the import baseline."""

    uri: str
    repo: Repository
    bundle1: str
    bundle2: str
    #: a bundle of branch ``feature``, forked from bundle 1 with --changed of the big documents changed
    feature: str
    export: Path
    documents: int
    export_s: float
    import_s: float
    databases: list[str]


def new_repo(uri: str, prefix: str, databases: list[str]) -> Repository:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    databases.append(name)
    repo = Repository.open(uri, name, author="bench")
    repo.init()
    return repo


def prepare(uri: str, n: int, big: int, changed: float, work: Path, results: Results) -> Source:
    databases: list[str] = []
    repo = new_repo(uri, "bench_remote", databases)
    t = time.perf_counter()
    repo.import_documents("main", "small", (doc(i) for i in range(n)))
    if big:
        repo.import_documents("main", "big", (doc(i) for i in range(big)))
    results.add("store", f"import of {n + big} documents", f"{time.perf_counter() - t:.1f} s")
    bundle1 = repo.create_bundle("main", "bench", label="prod").id
    step = max(1, round(1 / changed)) if changed else 0
    if big and step:
        repo.import_documents("main", "big", (doc(i, changed=True) for i in range(0, big, step)))
    bundle2 = repo.create_bundle("main", "bench, changed").id
    repo.create_branch("feature", bundle1)
    if big and step:
        repo.import_documents("feature", "big", (doc(i, changed=True) | {"feature": True} for i in range(step // 2, big, step)))
    feature = repo.create_bundle("feature", "bench, feature").id
    export = work / "export"
    t = time.perf_counter()
    counts = export_to_directory(repo, bundle1, export)
    export_s = time.perf_counter() - t
    documents = sum(counts.values())
    results.add("store", f"export of bundle 1 ({documents} documents, every body read)", f"{export_s:.1f} s, {documents / export_s:.0f} docs/s")
    target = new_repo(uri, "bench_import", databases)
    t = time.perf_counter()
    for source in directory_sources(export):
        target.import_documents("main", source.collection, source.docs)
    import_s = time.perf_counter() - t
    results.add(
        "store", f"import of the export into a fresh repository (pull baseline, {documents} documents)", f"{import_s:.1f} s, {documents / import_s:.0f} docs/s"
    )
    return Source(uri, repo, bundle1, bundle2, feature, export, documents, export_s, import_s, databases)


def upload_baseline(url: str, nbytes: int) -> tuple[float, int]:
    """Seconds to upload ``nbytes`` as 8 MiB objects through the same client, two in flight."""
    store = open_store(url)
    count = max(1, math.ceil(nbytes / PACK_TARGET))
    blob = os.urandom(PACK_TARGET)
    last = nbytes - (count - 1) * PACK_TARGET
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: store.put_if_absent(f"baseline/{i:06d}", blob if i < count - 1 else blob[:last]), range(count)))
    return time.perf_counter() - t, count


def measure_push_pull(backend: str, url: str, baseline_url: str, src: Source, results: Results) -> None:
    remote = Remote(open_store(url))
    t = time.perf_counter()
    first = push_bundle(src.repo, remote, src.bundle1, label="prod")
    push_s = time.perf_counter() - t
    base_s, base_n = upload_baseline(baseline_url, first.bytes_uploaded)
    ratio = base_s / push_s
    results.add(
        backend,
        f"push of bundle 1 ({first.documents} documents, {first.bytes_uploaded / 2**20:.1f} MiB)",
        f"{push_s:.1f} s ({first.documents / push_s:.0f} docs/s) vs upload of the same bytes as {base_n} x 8 MiB {base_s:.2f} s: ratio {ratio:.3f}",
        verdict(ratio >= 0.5, ">= 0.5"),
    )
    results.add(backend, "objects written by that push", f"{first.objects_uploaded}", verdict(first.objects_uploaded <= 200, "<= 200"))
    t = time.perf_counter()
    second = push_bundle(src.repo, remote, src.bundle2, label="prod")
    share = second.bytes_uploaded / first.bytes_uploaded
    results.add(
        backend,
        f"push of bundle 2 ({second.uploaded_documents} documents changed, a delta over bundle 1)",
        f"{time.perf_counter() - t:.1f} s, {second.objects_uploaded} objects, {second.bytes_uploaded / 1024:.0f} KiB = {share:.2%} of the first push",
        verdict(share <= 0.02, "<= 2%"),
    )
    t = time.perf_counter()
    third = push_bundle(src.repo, remote, src.feature)
    share = third.bytes_uploaded / first.bytes_uploaded
    results.add(
        backend,
        f"feature-branch push (first push of a branch forked from bundle 1, {third.uploaded_documents} documents changed)",
        f"{time.perf_counter() - t:.1f} s, base {'bundle 1' if third.base == src.bundle1 else third.base} (similarity {third.similarity or 0:.2f}), "
        f"{third.objects_uploaded} objects, {third.bytes_uploaded / 1024:.0f} KiB = {share:.2%} of the first push",
        verdict(share <= 0.03, "<= 3%"),
    )
    target = new_repo(src.uri, "bench_pull", src.databases)
    t = time.perf_counter()
    report = pull(target, Remote(open_store(url)), src.bundle1)
    pull_s = time.perf_counter() - t
    ratio = src.import_s / pull_s
    results.add(
        backend,
        f"pull of bundle 1 ({report.downloaded} documents) into a fresh repository",
        f"{pull_s:.1f} s vs import of the exported directory {src.import_s:.1f} s: ratio {ratio:.2f}",
        verdict(ratio >= 0.8, ">= 0.8"),
    )


def measure_mounts(
    backend: str, url: str, env: dict[str, str], bundles: tuple[str, str], big: int, latency_ms: float, work: Path, results: Results, read_all_big: bool = True
) -> None:
    work = work / f"mounts-{backend}"
    work.mkdir()
    tree, tree2 = f"bundles/{bundles[0]}", f"bundles/{bundles[1]}"

    def requests(c: collections.Counter[str]) -> str:
        return f"{c['GET']} GET, {c['LIST']} LIST"

    with MemFS(work.parent / "memfs-src", work / "mnt-memfs") as mem:
        count, mem_s = read_all(mem.mountpoint / "small")
        mem_ls = ls_l(mem.mountpoint / "big") if big else 0.0
    with Mounted(url, work, "small", latency_ms, env) as m:
        m.counts()
        count, seconds = read_all(m.mountpoint / tree / "small")
        ratio = mem_s / seconds
        results.add(
            backend,
            f"cold read of {count} small documents",
            f"{seconds:.2f} s, {count / seconds:.0f} files/s, {requests(m.counts())}; memfs {count / mem_s:.0f} files/s: ratio {ratio:.2f}",
            verdict(ratio >= 0.5, ">= 0.5"),
        )
        count, seconds = read_all(m.mountpoint / tree / "small")
        results.add(backend, f"warm read of {count} small documents", f"{seconds:.2f} s, {count / seconds:.0f} files/s, {requests(m.counts())}")
    if not big:
        return
    with Mounted(url, work, "ls", latency_ms, env) as m:
        m.counts()
        seconds = ls_l(m.mountpoint / tree / "big")
        results.add(
            backend,
            f"ls -l of {big} documents, cold",
            f"{seconds:.2f} s, {requests(m.counts())}; memfs {mem_ls:.2f} s",
            verdict(seconds <= 3, "<= 3 s"),
        )
        seconds = ls_l(m.mountpoint / tree / "big")
        results.add(backend, f"ls -l of {big} documents, again", f"{seconds:.2f} s, {requests(m.counts())}")
    if bundles[1] != bundles[0]:
        with Mounted(url, work, "ls2", latency_ms, env) as m:
            m.counts()
            seconds = ls_l(m.mountpoint / tree2 / "big")
            results.add(
                backend, f"ls -l of {big} documents, bundle 2 (2 layers), cold", f"{seconds:.2f} s, {requests(m.counts())}", verdict(seconds <= 3, "<= 3 s")
            )
    if not read_all_big:
        return
    with Mounted(url, work, "big", latency_ms, env) as m:
        m.counts()
        count, seconds = read_all(m.mountpoint / tree / "big")
        c = m.counts()
        results.add(
            backend,
            f"reading all {count} documents, cold",
            f"{seconds:.1f} s, {count / seconds:.0f} files/s, {requests(c)}",
            verdict(c["GET"] <= 200, "<= 200 GET"),
        )
        results.add(backend, "daemon peak RSS", f"{m.peak_rss_mb():.0f} MB")
        home = m.home
    with Mounted(url, work, "big-cached", latency_ms, env, home=home) as m:
        m.counts()
        count, seconds = read_all(m.mountpoint / tree / "big")
        results.add(backend, "again, new mount, disk cache kept", f"{seconds:.1f} s, {count / seconds:.0f} files/s, {requests(m.counts())}")


def copy_remote(source: Path, url: str) -> None:
    """Every object of a local remote into another remote (objects never change, so a copy is the same remote)."""
    src, dst = open_store(str(source)), open_store(url)
    keys = [o.key for o in src.list("")]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: dst.put_if_absent(k, src.get(k)), keys))


def memfs_source(url: str, bundle: str, collection: str, dest: Path) -> None:
    """A collection of a bundle, as files, read back from the remote."""
    remote = Remote(open_store(url))
    desc = remote.descriptor(bundle)
    entries = list(remote.entries(desc, collection))
    dest.mkdir(parents=True)
    for e, body in zip(entries, remote.bodies(entries), strict=True):
        (dest / f"{e.stem}.json").write_bytes(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["local", "gcs", "s3", "all"], default="all")
    parser.add_argument("--mongo", help="MongoDB URI for the repositories (default: an in-process SecantusDB)")
    parser.add_argument("--n", type=int, default=2000, help="small documents read cold")
    parser.add_argument("--big", type=int, default=100_000, help="documents pushed, pulled, listed with ls -l and read (0: skip)")
    parser.add_argument("--changed", type=float, default=0.01, help="share of the big documents changed in bundle 2")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait this long before every object-store request of a mount")
    parser.add_argument("--skip-read-all", action="store_true", help="do not read all --big documents through the mounts (a minute or two each)")
    parser.add_argument("--skip-mounts", action="store_true", help="measure push and pull only (no FUSE)")
    parser.add_argument("--remote-dir", type=Path, help="keep the local remote here; a run that finds one measures the mounts only")
    args = parser.parse_args()
    backends = ["local", "gcs", "s3"] if args.backend == "all" else [args.backend]
    results = Results()
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-remote-") as tmp:
        work = Path(tmp)
        local = args.remote_dir or work / "remote"
        reuse = (local / "argonfs-remote.json").exists()
        server = None
        src: Source | None = None
        emulators: dict[str, Emulator] = {}
        try:
            for kind in backends:
                if kind != "local":
                    emulators[kind] = Emulator(kind, work)
            if reuse:
                remote = Remote(open_store(str(local)))
                ids = sorted((b for b in remote.bundle_ids() if remote.descriptor(b).branch == "main"), key=lambda b: remote.descriptor(b).time_ns)
                bundles = (ids[0], ids[-1])
                print(f"reusing the remote in {local}: mounts only (bundles {bundles[0]}, {bundles[1]})")
            else:
                uri = args.mongo
                if uri is None:
                    from secantus import SecantusDBServer

                    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(work / "db"))
                    server.start()
                    uri = server.uri
                src = prepare(uri, args.n, args.big, args.changed, work, results)
                bundles = (src.bundle1, src.bundle2)
                for collection in ("small", "big") if args.big else ("small",):
                    shutil.copytree(src.export / collection, work / "memfs-src" / collection)
            for kind in backends:
                if kind == "local":
                    url, baseline, env = str(local), str(work / "baseline-local"), {}
                    (work / "baseline-local").mkdir()
                    if not reuse:
                        local.mkdir(parents=True, exist_ok=True)
                else:
                    emu = emulators[kind]
                    bucket = f"argonfs-bench-{uuid.uuid4().hex[:12]}"
                    emu.create_bucket(bucket)
                    url, baseline, env = emu.url(bucket, "remote"), emu.url(bucket), emu.env
                os.environ.update(env)
                try:
                    if src is not None:
                        measure_push_pull(kind, url, baseline, src, results)
                    elif kind != "local":
                        copy_remote(local, url)
                    if args.skip_mounts:
                        continue
                    if not (work / "memfs-src").exists():
                        for collection in ("small", "big") if args.big else ("small",):
                            memfs_source(url, bundles[0], collection, work / "memfs-src" / collection)
                    measure_mounts(kind, url, env, bundles, args.big, args.latency_ms, work, results, not args.skip_read_all)
                finally:
                    for name in env:
                        os.environ.pop(name, None)
        finally:
            for emu in emulators.values():
                emu.stop()
            if src is not None:
                from argonfs.store.db.mongo import client

                for name in src.databases:
                    client(src.uri).drop_database(name)
            if server is not None:
                server.stop()
    print(f"\nremote benchmark, --n {args.n} --big {args.big} --changed {args.changed:g}, object-store latency {args.latency_ms:g} ms per mount request")
    for backend, rows in results.rows.items():
        print(f"{backend}:")
        for label, value, note in rows:
            print(f"  {label:72} {value} {note}")


if __name__ == "__main__":
    main()
