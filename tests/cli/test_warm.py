"""The warm command process (argonfs/launcher.py, argonfs/cli/warm.py, docs/cli.md "Warm commands").

Real processes: the launcher runs as ``python -m argonfs.launcher`` with ARGONFS_WARM=1 on
a temporary data directory; every warm process a test starts is stopped by pid afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import argonfs

ROOT = Path(argonfs.__file__).resolve().parent.parent
DOC = b'{"_id": "ada", "name": "Ada"}'


def _warm_pids(home: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"argonfs.cli.warm" in cmd and str(home).encode() in cmd:
                pids.append(int(entry.name))
    return pids


def _wait_gone(pid: int, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state == "Z":
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


class Home:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {k: v for k, v in os.environ.items() if k not in ("ARGONFS_MONGO_URI", "ARGONFS_WARM")}
        self.env.update(ARGONFS_HOME=str(path), PYTHONPATH=str(ROOT))

    def run(self, *args: str, warm: bool = True, input: bytes | None = None, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
        env = dict(self.env, ARGONFS_WARM="1" if warm else "0")
        return subprocess.run([sys.executable, *flags, "-m", "argonfs.launcher", *args], env=env, cwd=self.path, input=input, capture_output=True, timeout=120)

    def wait_warm(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (self.path / "warm.sock").exists():
                m = re.findall(rb"warm process (\d+) serving", (self.path / "warm.log").read_bytes())
                if m:
                    return int(m[-1])
            time.sleep(0.05)
        raise AssertionError("no warm process started")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path / "home")
    h.path.mkdir()
    try:
        assert h.run("init", warm=False).returncode == 0
        yield h
    finally:
        for pid in _warm_pids(h.path):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)
        subprocess.run([sys.executable, "-m", "argonfs", "server", "stop"], env=dict(h.env, ARGONFS_WARM="0"), cwd=h.path, capture_output=True, timeout=120)


def test_warm_and_in_process_agree_and_the_launcher_stays_light(home: Home) -> None:
    first = home.run("put", "main", "people", "-", input=DOC)  # no warm process yet: runs here, starts one
    assert first.returncode == 0, first.stderr
    home.wait_warm()
    for warm in (True, False):
        put = home.run("put", "main", "people", "-", input=DOC.replace(b"Ada", b"Grace"), warm=warm)
        assert put.returncode == 0, put.stderr
        cat = home.run("cat", "main", "people", "ada", warm=warm)
        assert cat.returncode == 0 and b'"Grace"' in cat.stdout
        missing = home.run("cat", "main", "people", "nosuch", warm=warm)
        assert missing.returncode == 2 and b"no document" in missing.stderr
    assert home.run("ls", "main", warm=True).stdout == home.run("ls", "main", warm=False).stdout
    # -X importtime lists what the launcher imported; the command ran in the warm process
    light = home.run("cat", "main", "people", "ada", flags=("-X", "importtime"))
    assert light.returncode == 0 and b'"Grace"' in light.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in light.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "argonfs" in imported  # (the launcher itself runs as __main__)
    assert not imported & {"pymongo", "click", "argonfs.store", "argonfs.cli", "bson"}


def test_a_stale_warm_process_is_not_used_and_exits(home: Home) -> None:
    assert home.run("status").returncode == 0
    pid = home.wait_warm()
    source = ROOT / "argonfs" / "naming.py"
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        status = home.run("status", flags=("-X", "importtime"))
        assert status.returncode == 0 and b"repository: argonfs" in status.stdout
        assert re.search(rb"\|\s+pymongo\n", status.stderr)  # ran in the launcher itself
        assert _wait_gone(pid)
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    # another sys.path: refused, runs in-process
    home.wait_warm()
    env = dict(home.env, ARGONFS_WARM="1", PYTHONPATH=f"{ROOT}{os.pathsep}{home.path}")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "argonfs.launcher", "status"], env=env, cwd=home.path, capture_output=True, timeout=120)
    assert out.returncode == 0 and re.search(rb"\|\s+pymongo\n", out.stderr)


def test_two_first_commands_start_one_warm_process(home: Home) -> None:
    env = dict(home.env, ARGONFS_WARM="1")
    procs = [subprocess.Popen([sys.executable, "-m", "argonfs.launcher", "status"], env=env, cwd=home.path, stdout=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    home.wait_warm()
    deadline = time.monotonic() + 60
    while len(_warm_pids(home.path)) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_warm_pids(home.path)) == 1
    assert len(re.findall(rb"serving", (home.path / "warm.log").read_bytes())) == 1


def test_idle_exit(home: Home) -> None:
    home.env["ARGONFS_WARM_IDLE"] = "1"
    assert home.run("status").returncode == 0
    assert _wait_gone(home.wait_warm())


def test_sigint_is_forwarded(home: Home) -> None:
    assert home.run("status").returncode == 0
    home.wait_warm()
    codes = []
    for warm in ("1", "0"):
        p = subprocess.Popen(
            [sys.executable, "-m", "argonfs.launcher", "put", "main", "people", "-"],
            env=dict(home.env, ARGONFS_WARM=warm),
            cwd=home.path,
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.5)  # not a threshold: the command waits on stdin until the signal either way
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
        codes.append(p.returncode)
    assert codes[0] == codes[1] != 0
