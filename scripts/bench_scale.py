"""Scale benchmark: one repository of --n documents taken through import, a bundle, a
fork, a 1% change, listings (store API and ``ls -l`` through the mount), a diff,
``argonfs gc`` and a first read in a fresh process, each timed, with the peak memory of
the process that did it.

    .venv/bin/python scripts/bench_scale.py [--n 20000] [--mongo URI] [--work DIR] [--json]
    .venv/bin/python scripts/bench_scale.py --n 1000000      # by hand, not in CI

Every store step runs in a fresh child process (this script with ``--step NAME``), so
its peak RSS is its own (``os.wait4``'s ``ru_maxrss``); the mount's is the daemon's
``VmHWM`` just before it is unmounted.  With no --mongo, a SecantusDB server (durable,
syncing on commit) runs in a separate process with its data under --work, so the
server's memory and CPU are never counted in a client's.  The import is compared with a
raw ``insert_many`` of the same documents, in batches of 1000, into a plain collection
on the same server, and ``ls -l`` with listing the same collection through the store
API, both measured in the same run.  Needs /dev/fuse and root (or fuse permissions) for
the mount steps.  Results: docs/benchmarks.md, "Scale".
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "users"
BRANCH = "changed"  # forked from main, with 1% of the documents changed
SCRATCH = "scratch"  # the same 1% changed, then deleted: what gc reclaims

SERVER = r"""
import os, signal, sys, threading
from secantus import SecantusDBServer
storage, uri_file = sys.argv[1], sys.argv[2]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=storage, durable=True, sync_on_commit=True)
server.start()
with open(uri_file + ".tmp", "w") as f:
    f.write(server.uri)
os.replace(uri_file + ".tmp", uri_file)
while not stop.wait(1.0):
    pass
server.stop()
"""


def doc(i: int, changed: bool = False) -> dict[str, Any]:
    """The documents of bench_store.py; ``changed`` ones have another score."""
    return {"_id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": -1 if changed else i % 97, "tags": ["a", "b", str(i % 13)]}


def docs(n: int) -> Iterator[dict[str, Any]]:
    return (doc(i) for i in range(n))


def changed_docs(n: int) -> Iterator[dict[str, Any]]:
    """Every 100th document, changed: 1% of n."""
    return (doc(i, changed=True) for i in range(0, n, 100))


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------------- child steps
# Each runs in a fresh process, times only its own work (after imports and opening the
# repository, except "exists", which times exactly that), and returns what it measured.


def step_raw(args: argparse.Namespace) -> dict[str, Any]:
    from argonfs.store.db.mongo import client

    coll = client(args.mongo)[f"{args.repo}_raw"][COLLECTION]
    stream = docs(args.n)
    t = time.perf_counter()
    while batch := list(itertools.islice(stream, 1000)):
        coll.insert_many(batch, ordered=True)
    return {"s": time.perf_counter() - t}


def step_import(args: argparse.Namespace) -> dict[str, Any]:
    repo = open_repo(args)
    repo.init()
    t = time.perf_counter()
    counts = repo.import_documents("main", COLLECTION, docs(args.n))
    s = time.perf_counter() - t
    assert counts.added == args.n, counts
    return {"s": s}


def step_bundle(args: argparse.Namespace) -> dict[str, Any]:
    repo = open_repo(args)
    t = time.perf_counter()
    bundle = repo.create_bundle("main", "bench_scale")
    s = time.perf_counter() - t
    t = time.perf_counter()
    repo.create_bundle("main", "bench_scale, again")  # the second in the process: no connection or format check
    return {"s": s, "warm_s": time.perf_counter() - t, "bundle": bundle.id}


def step_fork(args: argparse.Namespace) -> dict[str, Any]:
    repo = open_repo(args)
    t = time.perf_counter()
    repo.create_branch(BRANCH)
    s = time.perf_counter() - t
    t = time.perf_counter()
    repo.create_branch(f"{BRANCH}-2")  # the second in the process: no connection or format check
    return {"s": s, "warm_s": time.perf_counter() - t}


def step_change(args: argparse.Namespace) -> dict[str, Any]:
    repo = open_repo(args)
    t = time.perf_counter()
    counts = repo.import_documents(args.ref, COLLECTION, changed_docs(args.n))
    s = time.perf_counter() - t
    assert counts.updated == len(range(0, args.n, 100)), counts
    return {"s": s, "changed": counts.updated}


def step_list(args: argparse.Namespace) -> dict[str, Any]:
    repo = open_repo(args)
    t = time.perf_counter()
    count = sum(1 for _ in repo.entries(args.ref, COLLECTION))
    s = time.perf_counter() - t
    assert count == args.n, count
    return {"s": s}


def step_names(args: argparse.Namespace) -> dict[str, Any]:
    """The collection's file names and sizes in ``args.out``'s directory (names.tsv),
    for scripts/memfs.py to serve the same listing."""
    from argonfs import codec

    repo = open_repo(args)
    t = time.perf_counter()
    with open(args.out.with_name("names.tsv"), "w", encoding="utf-8", errors="surrogateescape") as f:
        count = 0
        for e in repo.entries(args.ref, COLLECTION):
            f.write(f"{e.stem}{codec.SUFFIX}\t{e.size}\n")
            count += 1
    assert count == args.n, count
    return {"s": time.perf_counter() - t}


def step_diff(args: argparse.Namespace) -> dict[str, Any]:
    repo = open_repo(args)
    t = time.perf_counter()
    changes = repo.diff(args.ref, BRANCH)
    s = time.perf_counter() - t
    expected = len(range(0, args.n, 100))
    assert len(changes) == expected and all(c.change == "modified" for c in changes), (len(changes), expected, changes[:3])
    return {"s": s, "changes": len(changes)}


def step_scratch(args: argparse.Namespace) -> dict[str, Any]:
    """A branch with the 1% changed, then deleted: gc's work."""
    repo = open_repo(args)
    t = time.perf_counter()
    repo.create_branch(SCRATCH)
    repo.import_documents(SCRATCH, COLLECTION, changed_docs(args.n))
    repo.delete_branch(SCRATCH)
    return {"s": time.perf_counter() - t}


def step_exists(args: argparse.Namespace) -> dict[str, Any]:
    from argonfs.store import Repository

    t = time.perf_counter()
    found = Repository.open(args.mongo, args.repo).collection_exists("main", COLLECTION)
    s = time.perf_counter() - t
    assert found
    return {"s": s}


STEPS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "raw": step_raw,
    "import": step_import,
    "bundle": step_bundle,
    "fork": step_fork,
    "change": step_change,
    "list": step_list,
    "names": step_names,
    "diff": step_diff,
    "scratch": step_scratch,
    "exists": step_exists,
}


def open_repo(args: argparse.Namespace) -> Any:
    from argonfs.store import Repository

    return Repository.open(args.mongo, args.repo, author="bench")


# ---------------------------------------------------------------------- the driver


class Child:
    """Run a command to completion; its wall time and peak RSS (``os.wait4``)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, timeout: float, stdout: Path | None = None) -> None:
        with open(log, "ab") as err, open(stdout or log, "ab") as out:
            t = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.01)
        self.wall_s = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait
        self.peak_rss_mib = usage.ru_maxrss / 1024  # KiB on Linux
        if proc.returncode != 0:
            raise SystemExit(f"failed (exit {proc.returncode}, log {log}): {' '.join(argv)}")


class Mounted:
    """``argonfs mount --foreground`` until its readiness file appears (with a deadline);
    on exit, its peak RSS is read, then it is unmounted lazily and terminated."""

    def __init__(self, mountpoint: Path, env: dict[str, str], memfs_names: Path | None = None) -> None:
        """``memfs_names``: mount scripts/memfs.py serving those names and sizes instead."""
        self.mountpoint = mountpoint
        mountpoint.mkdir(parents=True, exist_ok=True)
        ready = mountpoint.with_name(mountpoint.name + ".ready")
        ready.unlink(missing_ok=True)
        self.log = open(mountpoint.with_name(mountpoint.name + ".log"), "wb")  # noqa: SIM115
        argv = [sys.executable, "-m", "argonfs", "mount", "--foreground", str(mountpoint), "--ready-file", str(ready)]
        if memfs_names is not None:
            argv = [sys.executable, str(ROOT / "scripts/memfs.py"), "--names", str(memfs_names), str(mountpoint), str(ready)]
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_rss_mib = 0.0
        deadline = time.monotonic() + 600  # memfs reads its names list first
        try:
            while not ready.exists():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"mount failed (log {self.log.name})")
                time.sleep(0.02)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.peak_rss_mib = peak_rss_mib(self.proc.pid)
        finally:
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False, stderr=subprocess.DEVNULL)
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def __enter__(self) -> Mounted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ls_l(path: Path, n: int) -> tuple[float, float]:
    """Seconds of ``ls -l PATH > /dev/null`` (cold), then of a second one (warm) whose
    output is counted to check every document was listed."""
    t = time.perf_counter()
    subprocess.run(["ls", "-l", str(path)], check=True, stdout=subprocess.DEVNULL)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    out = subprocess.run(["ls", "-l", str(path)], check=True, capture_output=True).stdout
    warm = time.perf_counter() - t
    assert out.count(b"\n") == n + 1, (out.count(b"\n"), n)  # "total ..." and one line each
    return cold, warm


class Server:
    """SecantusDB in its own process, storing under ``storage``."""

    def __init__(self, storage: Path) -> None:
        storage.mkdir(parents=True, exist_ok=True)
        uri_file = storage.with_name("server.uri")
        uri_file.unlink(missing_ok=True)
        self.log = open(storage.with_name("server.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(storage), str(uri_file)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not uri_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"SecantusDB server failed to start (log {self.log.name})")
            time.sleep(0.05)
        self.uri = uri_file.read_text()

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.proc.pid) if self.proc.poll() is None else 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


#: the driver's steps, in order (``--steps`` picks some)
DRIVER_STEPS = ("raw", "import", "bundle", "fork", "change", "list", "ls_l", "diff", "gc", "exists")


def run(uri: str, n: int, work: Path, *, drop: bool, steps: tuple[str, ...] = DRIVER_STEPS) -> dict[str, Any]:
    """``steps`` against a new repository on ``uri``, or, without "import", against the
    one an earlier run with the same --work left (its ``state.json``); ``drop``: drop its
    databases at the end (on a server of our own they go with its data directory)."""
    state_file = work / "state.json"
    state: dict[str, Any] = {}
    if "import" not in steps:
        if not state_file.exists():
            raise SystemExit(f"--steps without import needs an earlier run's {state_file}")
        state = json.loads(state_file.read_text())
        if state["n"] != n:
            raise SystemExit(f"{state_file} is of a repository of {state['n']} documents, not --n {n}")
    repo_name = state.get("repo") or f"bench_scale_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, ARGONFS_MONGO_URI=uri, ARGONFS_REPO=repo_name, ARGONFS_HOME=str(work / "home"), ARGONFS_AUTHOR="bench")
    log = work / "steps.log"
    timeout = max(600.0, n / 100)  # generous: a hung step must still end the run
    out: dict[str, Any] = {"n": n, "changed": len(range(0, n, 100)), "repo": repo_name}

    def step(key: str, name: str, ref: str = "") -> dict[str, Any]:
        result = work / f"{key}.json"
        argv = [sys.executable, __file__, "--step", name, "--mongo", uri, "--repo", repo_name, "--n", str(n), "--ref", ref, "--out", str(result)]
        child = Child(argv, env, log, timeout)
        got = json.loads(result.read_text())
        out[key] = {**got, "process_s": child.wall_s, "rss_mib": child.peak_rss_mib}
        print(f"  {key:14} {got['s']:9.3f} s  {child.peak_rss_mib:7.1f} MiB", file=sys.stderr, flush=True)
        return got

    def save_state(**kw: Any) -> None:
        state.update(n=n, repo=repo_name, **kw)
        state_file.write_text(json.dumps(state))

    try:
        if "raw" in steps:
            step("raw_insert", "raw")
        if "import" in steps:
            step("import", "import")
            save_state()
        bundle = state.get("bundle")
        if "bundle" in steps:
            bundle = step("bundle", "bundle")["bundle"]
            save_state(bundle=bundle)
        out["bundle_id"] = bundle
        if "fork" in steps:
            step("fork", "fork")
        if "change" in steps:
            step("change_1pct", "change", BRANCH)
            save_state(changed=True)
        if "list" in steps:
            step("list_bundle", "list", bundle)
            step("list_branch", "list", BRANCH)
        if "ls_l" in steps:
            # the floor: scripts/memfs.py serving the same names and sizes, measured first
            step("names", "names", bundle)
            with Mounted(work / "mnt-memfs", env, memfs_names=work / "names.tsv") as m:
                cold, warm = ls_l(m.mountpoint / "big", n)
            out["ls_l_memfs"] = {"s": cold, "warm_s": warm, "rss_mib": m.peak_rss_mib}
            print(f"  {'ls_l_memfs':14} {cold:9.3f} s  {m.peak_rss_mib:7.1f} MiB (memfs)", file=sys.stderr, flush=True)
            for key, rel in (("ls_l_bundle", f"bundles/{bundle}/{COLLECTION}"), ("ls_l_branch", f"branches/{BRANCH}/{COLLECTION}")):
                with Mounted(work / f"mnt-{key}", env) as m:
                    cold, warm = ls_l(m.mountpoint / rel, n)
                out[key] = {"s": cold, "warm_s": warm, "rss_mib": m.peak_rss_mib}
                print(f"  {key:14} {cold:9.3f} s  {m.peak_rss_mib:7.1f} MiB (daemon)", file=sys.stderr, flush=True)
        if "diff" in steps:
            step("diff", "diff", bundle)
        if "gc" in steps:
            step("gc_setup", "scratch")
            result = work / "gc.json"
            result.unlink(missing_ok=True)
            child = Child([sys.executable, "-m", "argonfs", "gc", "--json", "--grace", "0s"], env, log, timeout, stdout=result)
            report = json.loads(result.read_text())
            assert report["by_reason"]["deleted branches"]["records"] == out["changed"], report
            out["gc"] = {"s": child.wall_s, "process_s": child.wall_s, "rss_mib": child.peak_rss_mib, "reclaimed": report["records"]}
            print(f"  {'gc':14} {child.wall_s:9.3f} s  {child.peak_rss_mib:7.1f} MiB", file=sys.stderr, flush=True)
        if "exists" in steps:
            step("exists_fresh", "exists")
    finally:
        if drop:
            drop_databases(uri, [repo_name, f"{repo_name}_raw"])
    (work / "results.json").write_text(json.dumps(out, indent=2))
    return out


def drop_databases(uri: str, names: list[str]) -> None:
    """Drop what the run wrote to someone else's server.  Dropping a large database can
    take minutes, so with no socket timeout; a failure only warns, keeping the results."""
    import pymongo

    c: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, socketTimeoutMS=None)
    try:
        for name in names:
            c.drop_database(name)
    except pymongo.errors.PyMongoError as exc:
        print(f"warning: could not drop {names}: {exc}", file=sys.stderr)
    finally:
        c.close()


ROWS = [
    ("raw_insert", "raw insert_many, batches of 1000 (baseline)"),
    ("import", "import_documents into main/users"),
    ("bundle", "bundle of main"),
    ("fork", "fork: create_branch from main"),
    ("change_1pct", "1% changed in the fork (one import)"),
    ("list_bundle", "store listing, bundle"),
    ("list_branch", "store listing, fork"),
    ("ls_l_memfs", "ls -l via scripts/memfs.py, same names (cold)"),
    ("ls_l_bundle", "ls -l via mount, bundle (cold)"),
    ("ls_l_branch", "ls -l via mount, fork (cold)"),
    ("diff", "diff bundle -> fork"),
    ("gc_setup", "(setup) scratch branch, 1% changed, deleted"),
    ("gc", "argonfs gc --json --grace 0s (whole CLI)"),
    ("exists_fresh", "open + collection_exists, fresh process"),
]


def table(r: dict[str, Any], server: str) -> str:
    n = r["n"]

    def ls_ratio(key: str, store: str) -> str:
        if key not in r:
            return ""
        row = r[key]
        parts = []
        if "ls_l_memfs" in r:
            of = r["ls_l_memfs"]["s"] / row["s"]
            parts.append(f"memfs / argonfs {of:.2f} (goal >= 0.70: {'ok' if of >= 0.7 else 'MISSED'})")
        if store in r:
            parts.append(f"{row['s'] / r[store]['s']:.2f} x store")
        return "; ".join([*parts, f"warm {row['warm_s']:.2f} s"])

    ratio = {
        "ls_l_bundle": ls_ratio("ls_l_bundle", "list_bundle"),
        "ls_l_branch": ls_ratio("ls_l_branch", "list_branch"),
        "ls_l_memfs": f"warm {r['ls_l_memfs']['warm_s']:.2f} s" if "ls_l_memfs" in r else "",
    }
    if "import" in r and "raw_insert" in r:
        of = r["raw_insert"]["s"] / r["import"]["s"]
        ratio["import"] = f"{of:.2f} of raw (goal >= 0.80: {'ok' if of >= 0.8 else 'MISSED'})"
    if "list_branch" in r:
        ratio["list_branch"] = f"{r['list_branch']['s'] / r['list_bundle']['s']:.2f} x bundle"
    for key in ("bundle", "fork"):
        if key in r:
            ratio[key] = f"first call in the process; a second: {r[key]['warm_s'] * 1000:.1f} ms"
    if "diff" in r:
        ratio["diff"] = f"{r['diff']['changes']} changes"
    if "gc" in r:
        ratio["gc"] = f"{r['gc']['reclaimed']} versions reclaimed"
    lines = [f"server: {server}; {n} documents, {r['changed']} changed in the fork", ""]
    lines.append(f"{'step':46} {'seconds':>9} {'process s':>9} {'peak RSS MiB':>12}  ratio / notes")
    for key, label in ROWS:
        if key not in r:
            continue
        row = r[key]
        process = f"{row['process_s']:9.2f}" if "process_s" in row else f"{'(memfs)' if key == 'ls_l_memfs' else '(daemon)':>9}"
        lines.append(f"{label:46} {row['s']:9.3f} {process} {row['rss_mib']:12.1f}  {ratio.get(key, '')}")
    lines.append("")
    if "import" in r and "raw_insert" in r:
        lines.append(f"import {n / r['import']['s']:.0f} docs/s, raw insert_many {n / r['raw_insert']['s']:.0f} docs/s")
    if "server_rss_mib" in r:
        lines.append(f"server (separate process) peak RSS {r['server_rss_mib']:.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="documents in the repository (default 20000; the issue's goal: 1000000)")
    parser.add_argument("--mongo", metavar="URI", help="MongoDB URI (default: a SecantusDB server in a separate process)")
    parser.add_argument("--work", type=Path, help="directory for the server's data, mountpoints and logs (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument(
        "--steps",
        default=",".join(DRIVER_STEPS),
        help=f"comma-separated steps to run, of {','.join(DRIVER_STEPS)} (default: all); without import, the repository of an earlier run with the same --work",
    )
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--repo", help=argparse.SUPPRESS)
    parser.add_argument("--ref", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        args.out.write_text(json.dumps(STEPS[args.step](args)))
        return
    steps = tuple(s for s in DRIVER_STEPS if s in args.steps.split(","))
    unknown = set(args.steps.split(",")) - set(DRIVER_STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; choose from {','.join(DRIVER_STEPS)}")
    if args.work is None and "import" not in steps:
        parser.error("--steps without import needs the --work of the run that imported")

    with tempfile.TemporaryDirectory(prefix="argonfs-bench-scale-") as tmp:
        work = args.work.resolve() if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        server = None
        uri = args.mongo
        if uri is None:
            server = Server(work / "db")
            uri = server.uri
            print(f"SecantusDB (separate process, pid {server.proc.pid}) at {uri}", file=sys.stderr, flush=True)
        try:
            r = run(uri, args.n, work, drop=server is None and steps == DRIVER_STEPS, steps=steps)
            if server is not None:
                r["server_rss_mib"] = server.peak_rss_mib()
        finally:
            if server is not None:
                server.stop()
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        import secantus

        print(table(r, f"SecantusDB {secantus.__version__} (separate process, durable, sync on commit)" if server else args.mongo))


if __name__ == "__main__":
    main()
