"""The installed ``argonfs`` console script on the embedded default server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ARGONFS = shutil.which("argonfs") or str(Path(sys.executable).with_name("argonfs"))


@pytest.fixture
def home(tmp_path: Path):
    """A private data directory; its embedded server is stopped afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGONFS_")}
    env["ARGONFS_HOME"] = str(tmp_path / "home")
    env["ARGONFS_AUTHOR"] = "console-tester"
    env["ARGONFS_WARM"] = "0"  # no warm process left behind (tests/cli/test_warm.py tests it)

    def run(*args: str, code: int = 0, input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([ARGONFS, *args], env=env, capture_output=True, text=True, input=input, timeout=120)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return proc

    yield run
    run("server", "stop")


def test_help_is_fast_and_lazy(home) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, argonfs.cli; print(sorted(m for m in ('pymongo', 'bson', 'orjson', 'secantus') if m in sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
    assert "Commands:" in home("--help").stdout


def test_embedded_default_serves_several_processes(home, tmp_path: Path) -> None:
    # several CLI processes racing to start the embedded server end up on one server
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: home("init"), range(4)))
    assert sum("initialised repository" in r.stdout and "already" not in r.stdout for r in results) == 1
    info = json.loads(home("server", "status", "--json").stdout)
    assert info["running"] and info["uri"].startswith("mongodb://127.0.0.1:")
    status = json.loads(home("status", "--json").stdout)
    assert status["server"].startswith("embedded") and status["mongo"] in info["uri"]

    src = tmp_path / "src"
    src.mkdir()
    (src / "people.jsonl").write_text('{"_id": "ada"}\n{"_id": "alan"}\n')
    home("import", str(src))
    home("put", "main", "people", "-", input='{"_id": "grace"}')
    assert home("ls", "main", "people").stdout.count(".json") == 3
    log = json.loads(home("ls", "main", "people", "--json").stdout)
    assert {r["author"] for r in log} == {"console-tester"}

    # the data outlives the server process
    home("server", "stop")
    assert not json.loads(home("server", "status", "--json").stdout)["running"]
    assert home("ls", "main", "people").stdout.count(".json") == 3


def test_errors_exit_non_zero_without_traceback(home) -> None:
    home("init")
    proc = home("cat", "main", "people", "nobody", code=2)
    assert proc.stderr.startswith("argonfs: error:") and "Traceback" not in proc.stderr
