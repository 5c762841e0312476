"""A real `argonfs serve` process on a loopback port: it starts, answers the API and the
console, takes writes only with the token `argonfs serve token` prints, says at start
what a non-loopback address means, and stops cleanly on SIGTERM."""

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
                s.proc.send_signal(signal.SIGTERM)
                try:
                    s.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                    s.proc.wait(timeout=20)


def stop(served: Served) -> int:
    served.proc.send_signal(signal.SIGTERM)
    return served.proc.wait(timeout=20)


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([ARGONFS, *args], env=env, capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.mark.deadline(180)
def test_serve_on_loopback(serve, env, mongo_uri: str, repo_name: str) -> None:
    cli(env, "--mongo", mongo_uri, "--repo", repo_name, "init")
    s = serve("--mongo", mongo_uri, "--repo", repo_name)
    assert [b["name"] for b in s.json("/api/v1/branches")] == ["main"]
    token = cli(env, "serve", "token").strip()
    path = "/api/v1/refs/main/collections/people/documents/ada"
    status, data = s.request("PUT", path, b'{"name": "Ada"}')
    assert status == 401 and json.loads(data)["error"] == "unauthorized"
    status, data = s.request("PUT", path, b'{"name": "Ada"}', token=token)
    assert status == 200 and json.loads(data)["author"] == "server-owner"
    # the CLI sees the write, and the API sees the CLI's
    assert json.loads(cli(env, "--mongo", mongo_uri, "--repo", repo_name, "cat", "main", "people", "ada"))["name"] == "Ada"
    subprocess.run(
        [ARGONFS, "--mongo", mongo_uri, "--repo", repo_name, "put", "main", "people", "-"], env=env, input='{"_id": "alan"}', text=True, check=True, timeout=120
    )
    page = s.json("/api/v1/refs/main/collections/people/documents")
    assert [e["name"] for e in page["items"]] == ["ada.json", "alan.json"]
    # a name with "%" in it (the _id "a/b" is the file ~sa%2Fb.json), quoted once in the URL
    status, data = s.request("PUT", "/api/v1/refs/main/collections/people/documents/~sa%252Fb", b'{"_id": "a/b"}', token=token)
    assert status == 200 and json.loads(data)["stem"] == "~sa%2Fb", data
    assert s.json("/api/v1/refs/main/collections/people/documents/~sa%252Fb.json")["document"] == {"_id": "a/b"}
    status, html = s.request("GET", "/refs/main/collections/people")
    assert b'href="/refs/main/collections/people/documents/~sa%252Fb"' in html
    assert s.request("GET", "/refs/main/collections/people/documents/~sa%252Fb")[0] == 200
    status, html = s.request("GET", "/")
    assert status == 200 and b'href="/refs/main"' in html
    status, data = s.request("GET", "/api/v1/refs/nope/collections")
    assert status == 404 and set(json.loads(data)) == {"error", "message", "detail"}
    assert stop(s) == 0
    log = s.log.read_text()
    assert "serving repository" in log and "loopback only" in log and "Traceback" not in log


@pytest.mark.deadline(180)
def test_serve_off_loopback_needs_the_token_for_every_request(serve, env, mongo_uri: str, repo_name: str) -> None:
    cli(env, "--mongo", mongo_uri, "--repo", repo_name, "init")
    token = cli(env, "serve", "token").strip()
    s = serve("--mongo", mongo_uri, "--repo", repo_name, host="0.0.0.0", token=token)
    status, data = s.request("GET", "/api/v1/branches")
    assert status == 401 and json.loads(data)["error"] == "unauthorized"
    assert s.json("/api/v1/branches", token=token)[0]["name"] == "main"
    assert stop(s) == 0
    assert "is not a loopback address: every request needs Authorization: Bearer TOKEN" in s.log.read_text()


@pytest.mark.deadline(240)
def test_serve_on_the_embedded_default(serve, env) -> None:
    try:
        cli(env, "init")
        s = serve()
        assert s.json("/api/v1/refs/main/collections") == {"ref": "main", "at": "main@0", "collections": []}
        assert stop(s) == 0
    finally:
        subprocess.run([ARGONFS, "server", "stop"], env=env, capture_output=True, timeout=120)


def test_serve_refuses_a_missing_repository_and_a_taken_port(env, mongo_uri: str, repo_name: str) -> None:
    out = subprocess.run([ARGONFS, "--mongo", mongo_uri, "--repo", repo_name, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "argonfs init" in out.stderr and "Traceback" not in out.stderr
    cli(env, "--mongo", mongo_uri, "--repo", repo_name, "init")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        out = subprocess.run(
            [ARGONFS, "--mongo", mongo_uri, "--repo", repo_name, "serve", "--port", port], env=env, capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr
