"""Console benchmark: what the HTTP API of a real ``argonfs serve`` process adds to the
store calls its handlers make, and whether it holds up under 50 concurrent clients.

    .venv/bin/python scripts/bench_console.py [--mongo URI] [--n 100000] [--versions 100] [--changed 0.01]
        [--repeat 200] [--clients 50] [--seconds 60] [--json]
    .venv/bin/python scripts/bench_console.py --n 2000 --repeat 20 --clients 5 --seconds 5   # a quick check

With no --mongo, a SecantusDB server (durable, syncing on commit, as the embedded default
runs) is started in a process of its own, so neither this script's Python calls nor the
served process share an interpreter with it.  The data is built with the store's bulk
paths: ``--n`` documents imported into ``main/users``, one document of ``notes`` written
``--versions`` times, and a branch ``changed`` in which ``--changed`` of the users are
rewritten (one ``apply``).  Then ``argonfs serve --port 0`` runs over the repository as a
process of its own (this tree's code, a data directory of its own for the token), and:

- **latency**: each operation over HTTP (one kept-alive ``httpx`` client) and the same
  store calls through the Python API in this process (what the handler calls: ``pin``
  then ``entries``/``bodies``, ``log``, ``diff``), interleaved, ``--repeat`` times each
  after a warm-up; p50 and p99 of each, and the ratio http/python (goal: p50 at most
  1.2, HTTP overhead under 20% of the store call).  The operations: a page of 100
  document entries from the start of the collection and from a cursor in its middle, a
  page with bodies, the 100 versions of one document, and the diff of the two branches.
- **load**: ``--clients`` asyncio clients, each with its own connection, for
  ``--seconds``, mixing reads (pages, documents, histories) with PUTs of documents (a
  ``--write-share`` of the requests; each client writes its own ids).  Every answer is
  counted by status; afterwards every acknowledged write must be readable at the seq it
  answered, and each id's document in the branch must be its last acknowledged write.
  The served process's RSS (VmRSS) is sampled every second: first, last, max and slope.

Exits 1 if any request failed or any acknowledged write is missing.  Results:
docs/benchmarks.md, "Console".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import server_process

from argonfs.store import Change, Repository
from argonfs.store.db.mongo import client

ROOT = Path(__file__).resolve().parents[1]
USERS = "users"
NOTES = "notes"  # one document written --versions times
HISTORY = "story"
LOAD = "load"  # what the load's writers write
CHANGED = "changed"


def doc(i: int, changed: bool = False) -> dict[str, Any]:
    """The documents of bench_scale.py; ``changed`` ones have another score."""
    return {"_id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": -1 if changed else i % 97, "tags": ["a", "b", str(i % 13)]}


# ---------------------------------------------------------------------- the data


def build(repo: Repository, n: int, versions: int, changed: float) -> dict[str, float]:
    """The repository the benchmark reads, built with the store's bulk paths; the time of each step."""
    out: dict[str, float] = {}
    repo.init()
    t = time.perf_counter()
    counts = repo.import_documents("main", USERS, (doc(i) for i in range(n)))
    out["import_s"] = time.perf_counter() - t
    assert counts.added == n, counts
    t = time.perf_counter()
    for k in range(versions):
        repo.put("main", NOTES, {"_id": HISTORY, "version": k, "text": "x" * 100})
    out["versions_s"] = time.perf_counter() - t
    repo.create_branch(CHANGED)
    step = max(1, round(1 / changed))
    t = time.perf_counter()
    repo.apply(CHANGED, (Change("put", USERS, str(i), doc(i, changed=True)) for i in range(0, n, step)), kind="bench", message="1% changed")
    out["change_s"] = time.perf_counter() - t
    out["changed"] = len(range(0, n, step))
    return out


# ---------------------------------------------------------------------- the served process


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path

    def stop(self) -> int:
        """SIGTERM, then kill if it is still there after 30 s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(timeout=30)


def serve(uri: str, repo_name: str, work: Path) -> Served:
    """``argonfs serve --port 0`` of this tree over the repository, ready when it answers."""
    home = work / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGONFS_")}
    env["ARGONFS_HOME"] = str(home)
    env["ARGONFS_AUTHOR"] = "bench-console"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    log = work / "serve.log"
    with log.open("wb") as out:
        # cwd outside the tree: what is imported is PYTHONPATH's, not the cwd's
        proc = subprocess.Popen(
            [sys.executable, "-m", "argonfs", "serve", "--mongo", uri, "--repo", repo_name, "--port", "0"],
            env=env,
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    url = ""
    while not url:
        if proc.poll() is not None:
            raise SystemExit(f"argonfs serve exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"argonfs serve did not say where it serves within 120 s:\n{log.read_text()}")
        for line in log.read_text().splitlines():
            if " at http://" in line:
                url = line.rsplit(" at ", 1)[1].strip().rstrip("/")
        time.sleep(0.1)
    token = json.loads((home / "console" / "token.json").read_text())["token"]
    served = Served(proc, url, token, log)
    while True:
        try:
            if httpx.get(url + "/api/v1/branches", timeout=10).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            raise SystemExit(f"argonfs serve did not answer within 120 s:\n{log.read_text()}")
        time.sleep(0.1)


def cpu_s(pid: int) -> float:
    """A live process's CPU time so far (user + system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------------- latency


@dataclass
class Op:
    name: str
    http: Callable[[], Any]
    python: Callable[[], Any]
    #: another way to the same answer through the Python API, timed alongside for reference
    alt: Callable[[], Any] | None = None
    times: dict[str, list[float]] = field(default_factory=lambda: {"http": [], "python": []})


def quantile(xs: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``xs``, nearest rank."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def http_get(http: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    r = http.get(path, params=params)
    if r.status_code != 200:
        raise SystemExit(f"GET {path} {params}: {r.status_code} {r.text[:500]}")
    answer: dict[str, Any] = r.json()
    return answer


def latency_ops(repo: Repository, http: httpx.Client, n: int, changed: int, with_diff: bool) -> list[Op]:
    docs = f"/api/v1/refs/main/collections/{USERS}/documents"
    # a cursor from the middle of the collection: walk there up to 1000 entries a page
    step = max(1, min(1000, n // 2))
    walk = http_get(http, docs, limit=step)
    for _ in range(n // 2 // step - 1):
        walk = http_get(http, docs, limit=step, cursor=walk["next"])
    middle_cursor, middle_at, middle = walk["next"], walk["at"], walk["items"][-1]["stem"]
    assert middle_cursor is not None, "--n must be 2 or more"

    def page(after: str = "", at: str = "main") -> Any:
        view = repo.pin(at)
        return list(islice(repo.entries(view, USERS, after=after), 101))

    def page_bodies() -> Any:
        entries = page()[:100]
        return list(repo.bodies(USERS, entries))

    def history() -> Any:
        return list(islice(repo.log(repo.pin("main"), NOTES, HISTORY), 101))

    def check(answer: dict[str, Any], count: int) -> dict[str, Any]:
        assert len(answer["items"]) == count, (len(answer["items"]), count)
        return answer

    ops = [
        Op("page of 100, first", lambda: check(http_get(http, docs, limit=100), min(100, n)), page),
        Op(
            "page of 100, from the middle",
            lambda: check(http_get(http, docs, limit=100, cursor=middle_cursor), min(100, n - n // 2)),
            lambda: page(middle, middle_at),
        ),
        Op("page of 100 with bodies", lambda: check(http_get(http, docs, limit=100, bodies="true"), min(100, n)), page_bodies),
        Op("history of 100 versions", lambda: http_get(http, f"/api/v1/refs/main/collections/{NOTES}/documents/{HISTORY}/history", limit=100), history),
    ]
    if with_diff:

        def diff_http() -> Any:
            items, cursor = [], None
            while True:
                answer = http_get(http, "/api/v1/diff", **{"from": "main", "to": CHANGED, "limit": 1000, **({"cursor": cursor} if cursor else {})})
                items += answer["items"]
                cursor = answer["next"]
                if cursor is None:
                    break
            assert len(items) == changed, (len(items), changed)
            return items

        def diff_python() -> Any:
            # what review.diff_page calls for a page of 1000: the hashes' diff, then the fields of the page
            a, b = repo.pin("main"), repo.pin(CHANGED)
            changes, lo = [], 0
            while True:
                rest = repo.diff(a, b, fields=False)[lo : lo + 1001]
                changes += repo.diff_fields(a, b, rest[:1000])
                if len(rest) <= 1000:
                    break
                lo += 1000
            assert len(changes) == changed, (len(changes), changed)
            return changes

        def diff_one_call() -> Any:
            changes = repo.diff(repo.pin("main"), repo.pin(CHANGED))
            assert len(changes) == changed, (len(changes), changed)
            return changes

        ops.append(Op(f"diff of {changed} changes", diff_http, diff_python, diff_one_call))
    return ops


def measure(ops: list[Op], repeat: int, warmup: int, only: set[str] | None = None) -> None:
    """Each op's two sides, interleaved (which goes first alternates), ``repeat`` times after ``warmup``."""
    for i in range(warmup + repeat):
        for op in ops:
            if only is not None and op.name not in only:
                continue
            sides = [("http", op.http), ("python", op.python), *([("alt", op.alt)] if op.alt else [])]
            for side, fn in sides if i % 2 else reversed(sides):
                t = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t
                if i >= warmup:
                    op.times.setdefault(side, []).append(elapsed)


# ---------------------------------------------------------------------- load


@dataclass
class Load:
    statuses: Counter[str] = field(default_factory=Counter)
    #: op -> latencies (s)
    times: dict[str, list[float]] = field(default_factory=dict)
    #: (stem, n, seq) of every acknowledged write
    acked: list[tuple[str, int, int]] = field(default_factory=list)
    #: (seconds since the start, RSS MiB)
    rss: list[tuple[float, float]] = field(default_factory=list)
    seconds: float = 0.0
    #: process -> CPU seconds per second of the load
    cpu: dict[str, float] = field(default_factory=dict)


async def client_loop(k: int, url: str, token: str, n: int, ids: int, write_share: float, deadline: float, load: Load) -> None:
    rnd = random.Random(k)
    docs = f"/api/v1/refs/main/collections/{USERS}/documents"
    mine = [f"c{k:03d}-{j}" for j in range(ids)]
    written = 0
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) as http:
        while time.monotonic() < deadline:
            roll = rnd.random()
            headers: dict[str, str] = {}
            if roll < write_share:
                stem = mine[written % ids]
                written += 1
                op, method, path = "put", "PUT", f"/api/v1/refs/main/collections/{LOAD}/documents/{stem}"
                body: bytes | None = json.dumps({"_id": stem, "client": k, "n": written, "pad": "y" * 200}).encode()
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                params: dict[str, Any] = {}
            else:
                body = None
                kind = rnd.randrange(4)
                if kind == 0:
                    op, method, path, params = "page", "GET", docs, {"limit": 100}
                elif kind == 1:
                    op, method, path, params = "document", "GET", f"{docs}/{rnd.randrange(n)}", {}
                elif kind == 2:
                    op, method, path, params = "history", "GET", f"/api/v1/refs/main/collections/{NOTES}/documents/{HISTORY}/history", {"limit": 100}
                else:
                    op, method, path, params = "page", "GET", f"/api/v1/refs/{CHANGED}/collections/{USERS}/documents", {"limit": 100}
            t = time.perf_counter()
            try:
                r = await http.request(method, path, params=params, content=body, headers=headers)
            except httpx.HTTPError as exc:
                load.statuses[f"{op} {type(exc).__name__}"] += 1
                continue
            load.times.setdefault(op, []).append(time.perf_counter() - t)
            load.statuses[f"{op} {r.status_code}"] += 1
            if op == "put" and r.status_code == 200:
                load.acked.append((stem, written, r.json()["seq"]))


def run_load(served: Served, n: int, clients: int, seconds: float, ids: int, write_share: float, db_pid: int | None) -> Load:
    load = Load()
    stop = threading.Event()
    pids = {"serve": served.proc.pid, "bench": os.getpid(), **({"db server": db_pid} if db_pid else {})}
    cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
    t0 = time.monotonic()

    def sample() -> None:
        while True:
            load.rss.append((time.monotonic() - t0, rss_mib(served.proc.pid)))
            if stop.wait(1.0):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def main() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client_loop(k, served.url, served.token, n, ids, write_share, deadline, load) for k in range(clients)))

    try:
        asyncio.run(main())
    finally:
        load.seconds = time.monotonic() - t0
        load.cpu = {name: (cpu_s(pid) - cpu0[name]) / load.seconds for name, pid in pids.items()}
        stop.set()
        sampler.join()
    return load


def verify(repo: Repository, load: Load) -> dict[str, int]:
    """Every acknowledged write readable at its seq, and each id's current document its
    last acknowledged write: the counts of what is missing."""
    wrong_at_seq = 0
    last: dict[str, int] = {}
    for stem, k, seq in load.acked:
        if repo.get(f"main@{seq}", LOAD, stem).doc["n"] != k:
            wrong_at_seq += 1
        last[stem] = max(last.get(stem, 0), k)
    current = {d.stem: d.doc["n"] for d in repo.documents("main", LOAD)} if last else {}
    wrong_last = sum(1 for stem, k in last.items() if current.get(stem) != k)
    return {"acked": len(load.acked), "wrong_at_seq": wrong_at_seq, "ids": len(last), "wrong_last": wrong_last}


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


# ---------------------------------------------------------------------- main


def run(uri: str, args: argparse.Namespace, work: Path, db_pid: int | None = None) -> dict[str, Any]:
    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    repo = Repository.open(uri, name, author="bench")
    out: dict[str, Any] = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0], "n": args.n, "versions": args.versions}
    served = None
    try:
        out["build"] = build(repo, args.n, args.versions, args.changed)
        served = serve(uri, name, work)
        out["rss_start_mib"] = rss_mib(served.proc.pid)
        with httpx.Client(base_url=served.url, timeout=600) as http:
            with_diff = not args.no_diff and http.get("/api/v1/diff", params={"from": "main", "to": "main"}).status_code != 404
            ops = latency_ops(repo, http, args.n, int(out["build"]["changed"]), with_diff)
            fast = {op.name for op in ops if not op.name.startswith("diff")}
            measure(ops, args.repeat, args.warmup, fast)
            if with_diff:
                measure(ops, args.diff_repeat, 1, {op.name for op in ops} - fast)
        out["latency"] = {
            op.name: {side: {"p50_ms": 1000 * statistics.median(ts), "p99_ms": 1000 * quantile(ts, 0.99), "count": len(ts)} for side, ts in op.times.items()}
            for op in ops
            if op.times["http"]
        }
        out["diff_measured"] = with_diff
        out["rss_after_latency_mib"] = rss_mib(served.proc.pid)
        if args.clients:
            load = run_load(served, args.n, args.clients, args.seconds, args.ids, args.write_share, db_pid)
            out["load"] = {
                "clients": args.clients,
                "seconds": load.seconds,
                "requests": sum(load.statuses.values()),
                "statuses": dict(sorted(load.statuses.items())),
                "errors": sum(c for s, c in load.statuses.items() if not s.endswith((" 200",))),
                "latency": {
                    op: {"count": len(ts), "p50_ms": 1000 * statistics.median(ts), "p99_ms": 1000 * quantile(ts, 0.99)} for op, ts in sorted(load.times.items())
                },
                "cpu_per_s": load.cpu,
                "rss_every_10s_mib": [round(r) for t, r in load.rss[::10]],
                "rss_first_mib": load.rss[0][1],
                "rss_last_mib": load.rss[-1][1],
                "rss_max_mib": max(r for _, r in load.rss),
                "rss_slope_mib_per_min": slope_per_min(load.rss),
                "rss_slope_second_half_mib_per_min": slope_per_min(load.rss[len(load.rss) // 2 :]),
            }
            out["load"]["verify"] = verify(repo, load)
        out["serve_exit"] = served.stop()
        out["serve_log_tail"] = served.log.read_text().splitlines()[-5:]
    finally:
        if served is not None:
            served.stop()
        client(uri).drop_database(name)
    out["load_after"] = os.getloadavg()[0]
    return out


def report(out: dict[str, Any]) -> None:
    b = out["build"]
    print(f"{out['cores']} cores, load average {out['load_before']:.2f} -> {out['load_after']:.2f}")
    print(
        f"built: {out['n']} documents imported in {b['import_s']:.1f} s, {HISTORY!r} written {out['versions']} times in {b['versions_s']:.1f} s, "
        f"{b['changed']:.0f} documents changed in a branch in {b['change_s']:.1f} s"
    )
    print("\nlatency (ms), HTTP against the same store calls in this process, interleaved:")
    print(f"{'operation':34} {'n':>4} {'http p50':>9} {'py p50':>9} {'ratio':>6} {'http p99':>9} {'py p99':>9} {'ratio':>6}  goal p50 ratio <= 1.2")
    for name, sides in out["latency"].items():
        h, p = sides["http"], sides["python"]
        ratio = h["p50_ms"] / p["p50_ms"]
        print(
            f"{name:34} {h['count']:4d} {h['p50_ms']:9.2f} {p['p50_ms']:9.2f} {ratio:6.2f} {h['p99_ms']:9.2f} {p['p99_ms']:9.2f} "
            f"{h['p99_ms'] / p['p99_ms']:6.2f}  {'ok' if ratio <= 1.2 else 'MISSED'} (+{h['p50_ms'] - p['p50_ms']:.2f} ms)"
        )
        if "alt" in sides:
            a = sides["alt"]
            print(f"{'  (repo.diff(A, B) with fields)':34} {a['count']:4d} {'':9} {a['p50_ms']:9.2f} {'':6} {'':9} {a['p99_ms']:9.2f}")
    if not out["diff_measured"]:
        print("(no diff: the server has no /api/v1/diff, or --no-diff)")
    load = out.get("load")
    if load is None:
        return
    print(f"\nload: {load['clients']} clients for {load['seconds']:.1f} s, {load['requests']} requests ({load['requests'] / load['seconds']:.0f}/s)")
    for status, count in load["statuses"].items():
        print(f"  {status:24} {count:8d}")
    for op, lat in load["latency"].items():
        print(f"  {op:10} {lat['count']:7d} requests  p50 {lat['p50_ms']:8.1f} ms  p99 {lat['p99_ms']:8.1f} ms")
    v = load["verify"]
    print(f"errors: {load['errors']}")
    print(
        f"writes acknowledged: {v['acked']} to {v['ids']} ids; not readable at their seq: {v['wrong_at_seq']}; ids whose document is not the last acknowledged: {v['wrong_last']}"
    )
    print(
        f"server RSS (MiB): {out['rss_start_mib']:.0f} at start, {out['rss_after_latency_mib']:.0f} after the latency runs; during the load "
        f"first {load['rss_first_mib']:.0f}, last {load['rss_last_mib']:.0f}, max {load['rss_max_mib']:.0f}, "
        f"slope {load['rss_slope_mib_per_min']:+.1f} MiB/min (second half {load['rss_slope_second_half_mib_per_min']:+.1f})"
    )
    print(f"server RSS every 10 s (MiB): {' '.join(str(r) for r in load['rss_every_10s_mib'])}")
    print(f"CPU (s per s of the load, {out['cores']} cores): " + ", ".join(f"{name} {c:.2f}" for name, c in load["cpu_per_s"].items()))
    print(f"argonfs serve exited with {out['serve_exit']}")


def failed(out: dict[str, Any]) -> bool:
    load = out.get("load")
    return load is not None and bool(load["errors"] or load["verify"]["wrong_at_seq"] or load["verify"]["wrong_last"] or out["serve_exit"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo", help="a MongoDB URI (default: a SecantusDB server in a process of its own)")
    parser.add_argument("--n", type=int, default=100_000, help="documents of the collection paged and diffed")
    parser.add_argument("--versions", type=int, default=100, help="versions of the document whose history is read")
    parser.add_argument("--changed", type=float, default=0.01, help="share of the documents changed in the diffed branch")
    parser.add_argument("--repeat", type=int, default=200, help="measured runs of each operation on each side")
    parser.add_argument("--diff-repeat", type=int, default=20, help="measured runs of the diff on each side")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-diff", action="store_true", help="skip the diff")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients of the load (0: no load)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--ids", type=int, default=20, help="documents each client writes, in turn")
    parser.add_argument("--write-share", type=float, default=0.25, help="share of the load's requests that are PUTs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-console-") as tmp:
        work = Path(tmp)
        if args.mongo:
            out = run(args.mongo, args, work)
        else:
            (work / "db").mkdir()
            proc, uri = server_process.start(str(work / "db"))
            try:
                out = run(uri, args, work, proc.pid)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        report(out)
    sys.exit(1 if failed(out) else 0)


if __name__ == "__main__":
    main()
