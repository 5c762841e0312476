"""An acknowledged write survives any crash: real writer processes, SIGKILL of the server
and of writers at random points, then every write a writer saw acknowledged must be in
its slot with its content, and every branch's slots must still be dense.

A writer prints ``<key> <seq>`` only after ``put`` returned, so its output is exactly
what it was told had been stored.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from argonfs.store import Repository
from argonfs.store.db.embedded import ensure_server, server_info

_WRITER = """
import sys
from argonfs.store import Repository
repo = Repository.open(None, sys.argv[1], author=sys.argv[2])
for i in range(int(sys.argv[3])):
    key = f"{sys.argv[2]}-{i}"
    doc = repo.put("main", "c", {"_id": key, "by": sys.argv[2], "i": i})
    print(key, doc.seq, flush=True)
"""


def _writers(procs: list[subprocess.Popen], name: str, round_: int, n: int, writes: int) -> list[subprocess.Popen]:
    started = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, name, f"r{round_}w{k}", str(writes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
        )
        for k in range(n)
    ]
    procs.extend(started)
    return started


def _acknowledged(writers: list[subprocess.Popen]) -> dict[str, int]:
    acked = {}
    for w in writers:
        out, _ = w.communicate(timeout=120)
        for line in out.splitlines():
            key, seq = line.split()
            acked[key] = int(seq)
    return acked


def _check(repo: Repository, acked: dict[str, int]) -> None:
    for key, seq in acked.items():
        doc = repo.get("main", "c", key)
        assert doc.seq == seq, f"{key} acknowledged at slot {seq}, found at {doc.seq}"
        writer, i = key.rsplit("-", 1)
        assert doc.doc == {"_id": key, "by": writer, "i": int(i)}
    slots = sorted(r["s"] for r in repo.db["versions"].find({"b": repo.branch("main").id}, {"s": 1}))
    assert slots == list(range(1, len(slots) + 1))


def test_acknowledged_writes_survive_sigkill_of_the_server(embedded_home: Path, procs: list[subprocess.Popen]) -> None:
    """Five rounds: two writers, the server killed 0.05 to 0.4 s in (and in some rounds a
    writer as well), then the server started again and everything acknowledged checked."""
    rng = random.Random(os.environ.get("ARGONFS_TEST_SEED", "9"))
    Repository.open(None, "crash").init()
    acked: dict[str, int] = {}
    killed_a_server = 0
    for round_ in range(5):
        ensure_server(embedded_home)
        writers = _writers(procs, "crash", round_, 2, 400)
        time.sleep(rng.uniform(0.3, 0.6))  # the writers import and connect
        time.sleep(rng.uniform(0.05, 0.4))
        if round_ % 2:
            writers[0].kill()
        info = server_info(embedded_home)
        if info is not None:
            os.kill(info["pid"], signal.SIGKILL)
            killed_a_server += 1
        for w in writers:  # a writer stops at its first failed put (or finishes)
            w.wait(timeout=120)
        acked.update(_acknowledged(writers))
    assert killed_a_server == 5
    ensure_server(embedded_home)
    assert len(acked) > 10  # the writers got some writes in before each kill
    _check(Repository.open(None, "crash"), acked)


def test_acknowledged_writes_survive_sigkill_of_writers(repo, mongo_uri: str, repo_name: str, procs, monkeypatch) -> None:
    """On any server (SecantusDB or a real mongod): writers killed at random points."""
    monkeypatch.setenv("ARGONFS_MONGO_URI", mongo_uri)
    rng = random.Random(os.environ.get("ARGONFS_TEST_SEED", "9"))
    writers = _writers(procs, repo_name, 0, 4, 200)
    time.sleep(0.5)
    for w in writers:
        time.sleep(rng.uniform(0.0, 0.3))
        w.send_signal(signal.SIGKILL)
    acked = _acknowledged(writers)
    _check(repo, acked)
    after = repo.put("main", "c", {"_id": "after"})  # no acknowledged slot is taken again
    assert after.seq > max([0, *acked.values()])
    _check(repo, acked)


def test_every_write_is_journaled_and_every_read_majority_committed(repo) -> None:
    """What the arguments in docs/architecture.md ("Durability") rest on, for every collection."""
    for name in ("versions", "branch_names", "catalog", "labels"):
        coll = repo.db[name]
        assert coll.write_concern.document == {"w": "majority", "j": True}
        assert coll.read_concern.level == "majority"
    repo.put("main", "c", {"_id": "x"})  # and the server accepts both
    assert repo.get("main", "c", "x").doc == {"_id": "x"}
