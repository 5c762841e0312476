"""A full disk under the embedded server: every command says so in one line with its own
exit code, the server that panicked is replaced by the next command, acknowledged writes
survive, and freeing space is enough to go on (issue 22, item 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from argonfs.errors import NoSpace
from tests.store.full_disk import fill, tmpfs

#: each command's deadline; the whole test is a few dozen commands
COMMAND_DEADLINE = 60
#: a document big enough that a few of them overflow what WiredTiger's journal has allocated
BIG = 300_000


@pytest.fixture
def small_home(embedded_home: Path) -> Iterator[Path]:
    with tmpfs(embedded_home) as home:
        yield home


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ARGONFS_HOME=str(home), ARGONFS_MONGO_TIMEOUT_MS="2000")
    env.pop("ARGONFS_MONGO_URI", None)
    return subprocess.run([sys.executable, "-m", "argonfs", *args], input=stdin, capture_output=True, text=True, env=env, timeout=COMMAND_DEADLINE)


def _no_space(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == NoSpace.exit_code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("argonfs: error: no space left on device"), result.stderr


def test_a_full_disk_is_one_line_and_freeing_space_is_enough(small_home: Path) -> None:
    home = small_home
    assert _cli(home, "init").returncode == 0
    assert _cli(home, "put", "main", "c", "-", stdin=json.dumps({"_id": "x", "v": 1})).returncode == 0
    ballast = fill(home)

    acknowledged = []
    for n in range(40):
        doc = {"_id": f"big{n}", "pad": os.urandom(BIG // 2).hex()}
        result = _cli(home, "put", "main", "c", "-", stdin=json.dumps(doc))
        if result.returncode != 0:
            break
        acknowledged.append(doc["_id"])
    else:
        pytest.fail("40 writes of 300 kB each were accepted on a full disk")
    _no_space(result)
    for command in (["cat", "main", "c", "x"], ["branch", "list"], ["put", "main", "c", "-"], ["status"]):
        _no_space(_cli(home, *command, stdin=json.dumps({"_id": "x", "v": 2})))

    ballast.unlink()
    shown = _cli(home, "cat", "main", "c", "x")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["v"] == 1
    listed = {name.removesuffix(".json") for name in _cli(home, "ls", "main", "c").stdout.split()}
    # Every write acknowledged before the last one is kept.  The last write acknowledged
    # before WiredTiger panicked is lost by the recovery (seen with SecantusDB 0.7.0b3 with
    # and without argonfs's WiredTiger settings; an open defect, issue 22): not asserted.
    assert set(acknowledged[:-1]) <= listed, sorted(set(acknowledged) - listed)
    assert _cli(home, "put", "main", "c", "-", stdin=json.dumps({"_id": "x", "v": 2})).returncode == 0
    assert json.loads(_cli(home, "cat", "main", "c", "x").stdout)["v"] == 2
