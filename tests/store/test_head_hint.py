"""The head hint on a branch record: a fresh process finds a branch head in a
constant number of round trips, and a stale, missing or concurrently raised hint
never gives a wrong head (docs/architecture.md, "The head hint")."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
import textwrap

from argonfs.store import Repository
from argonfs.store.engine import versions as v

COUNT_HEAD = textwrap.dedent(
    """
    import json, sys
    from pymongo import monitoring

    class Count(monitoring.CommandListener):
        n = 0
        def started(self, event):
            Count.n += 1
        def succeeded(self, event): pass
        def failed(self, event): pass

    monitoring.register(Count())
    from argonfs.store import Repository
    repo = Repository.open(sys.argv[1], sys.argv[2], author="counter")
    before = Count.n
    head = repo.head("main")
    print(json.dumps({"head": head, "commands": Count.n - before}))
    """
)


def _fresh_head(uri: str, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", COUNT_HEAD, uri, name], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _forget_hints() -> None:
    v._HINTED.clear()  # as in a fresh process


def test_fresh_process_finds_the_head_in_constant_round_trips(repo, mongo_uri: str, repo_name: str) -> None:
    counts = []
    for target in (40, 400):
        while repo.head("main") < target:
            repo.put("main", "c", {"_id": repo.head("main"), "x": 1})
        got = _fresh_head(mongo_uri, repo_name)
        assert got["head"] == repo.head("main")
        counts.append(got["commands"])
    assert counts[0] == counts[1] == 4, counts  # meta (the format check), the name, the branch record (the hint), one probe round


def test_stale_hint_gives_the_true_head(repo) -> None:
    for i in range(100):
        repo.put("main", "c", {"_id": i})
    true = repo.head("main")
    bid = repo.branch("main").id
    repo.db["branches"].update_one({"_id": bid}, {"$set": {v.HINT: 3}})
    _forget_hints()
    assert v.head(repo._versions, bid) == true
    # the search that found it raised the stored hint again
    assert repo.db["branches"].find_one({"_id": bid})[v.HINT] == true


def test_absent_hint_gives_the_true_head(repo) -> None:
    for i in range(50):
        repo.put("main", "c", {"_id": i})
    true = repo.head("main")
    bid = repo.branch("main").id
    repo.db["branches"].update_one({"_id": bid}, {"$unset": {v.HINT: ""}})
    _forget_hints()
    assert v.head(repo._versions, bid) == true
    assert repo.db["branches"].find_one({"_id": bid})[v.HINT] == true


def _appender(uri: str, name: str, n: int, count: int) -> None:
    repo = Repository.open(uri, name, author=f"appender{n}")
    for i in range(count):
        repo.put("main", "c", {"_id": f"a{n}-{i}"})


def _reader(uri: str, name: str, q) -> None:
    seen = []
    for _ in range(30):
        _forget_hints()
        repo = Repository.open(uri, name, author="reader")
        seen.append(repo.head("main"))
    q.put(seen)


def test_concurrent_appenders_and_fresh_readers_see_real_monotone_heads(repo, mongo_uri: str, repo_name: str) -> None:
    repo.put("main", "c", {"_id": "start"})
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    appenders = [ctx.Process(target=_appender, args=(mongo_uri, repo_name, n, 40)) for n in range(2)]
    readers = [ctx.Process(target=_reader, args=(mongo_uri, repo_name, q)) for n in range(2)]
    everyone = appenders + readers
    try:
        start = repo.head("main")
        for p in everyone:
            p.start()
        seen = [q.get(timeout=300) for _ in readers]
        for p in everyone:
            p.join(timeout=120)
            assert p.exitcode == 0
    finally:
        for p in everyone:
            if p.is_alive():
                p.kill()
                p.join()
    final = repo.head("main")
    assert final == start + 80
    stored = sorted(r["s"] for r in repo.db["versions"].find({"b": repo.branch("main").id}, {"s": 1}))
    for heads in seen:
        assert heads == sorted(heads)  # monotone per reader
        assert heads[0] >= start and heads[-1] <= final
        assert all(h in stored for h in heads)  # a real slot
    # the hint is only raised after slots were acknowledged or observed: never ahead
    assert repo.db["branches"].find_one({"_id": repo.branch("main").id}).get(v.HINT, 0) <= final
    assert _fresh_head(mongo_uri, repo_name)["head"] == final
