"""Real `argonfs serve` processes for the tests: started on a free loopback port, ready
when the API answers (failing at once if the process dies), stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ARGONFS = shutil.which("argonfs") or str(Path(sys.executable).with_name("argonfs"))
READY = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen
    url: str
    log: Path

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path: str, token: str | None = None) -> object:
        status, data = self.request("GET", path, token=token)
        assert status == 200, (status, data)
        return json.loads(data)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ARGONFS_")}
    e["ARGONFS_HOME"] = str(tmp_path / "home")
    e["ARGONFS_AUTHOR"] = "server-owner"
    e["ARGONFS_WARM"] = "0"  # no warm process left behind (tests/cli/test_warm.py tests it)
    return e


@pytest.fixture
def serve(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `argonfs serve ARGS` and wait until it answers (failing at once if it dies);
    afterwards SIGTERM it, then kill it if it is still there."""
    started: list[Served] = []

    def start(*args: str, host: str = "127.0.0.1", ready_path: str = "/api/v1/branches", token: str | None = None) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([ARGONFS, *args, "serve", "--host", host, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
        served = Served(proc, f"http://127.0.0.1:{port}", log)
        started.append(served)
        deadline = time.monotonic() + READY
        while True:
            if proc.poll() is not None:
                pytest.fail(f"argonfs serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if served.request("GET", ready_path, token=token)[0] == 200:
                    return served
            except (ConnectionError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"argonfs serve did not answer within {READY} s:\n{log.read_text()}")
            time.sleep(0.1)

    try:
        yield start
    finally:
        for s in started:
            if s.proc.poll() is None:
                stop(s)


def stop(served: Served) -> int:
    """SIGTERM, and the exit code; a process still there 20 s later is killed, and fails the test."""
    served.proc.send_signal(signal.SIGTERM)
    try:
        return served.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait(timeout=20)
        pytest.fail(f"argonfs serve did not stop within 20 s of SIGTERM (killed):\n{served.log.read_text()}")


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([ARGONFS, *args], env=env, capture_output=True, text=True, check=True, timeout=120).stdout
