"""A real `argonfs serve` process on a loopback port: it starts, answers the API and the
console, takes writes only with the token `argonfs serve token` prints, says at start
what a non-loopback address means, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from argonfs.cli import main
from tests.console.processes import ARGONFS, cli, stop


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


def test_serve_without_the_console_extra_says_what_to_install(monkeypatch, mongo_uri: str, repo_name: str) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an install without the extra has
    out = CliRunner().invoke(main, ["--mongo", mongo_uri, "--repo", repo_name, "serve"])
    assert out.exit_code == 1 and "pip install 'argonfs[console]'" in out.stderr and "uvicorn" in out.stderr


@pytest.mark.deadline(240)
def test_concurrent_writers_through_the_api_and_the_cli_lose_no_write(serve, env, mongo_uri: str, repo_name: str) -> None:
    cli(env, "--mongo", mongo_uri, "--repo", repo_name, "init")
    s = serve("--mongo", mongo_uri, "--repo", repo_name)
    token = cli(env, "serve", "token").strip()
    path = "/api/v1/refs/main/collections/c/documents/shared"

    def api_writer(n: int) -> list[tuple[int, str]]:
        done = []
        for i in range(25):
            tag = f"api-{n}-{i}"
            status, data = s.request("PUT", path, json.dumps({"w": tag}).encode(), token=token)
            assert status == 200, data
            done.append((json.loads(data)["seq"], tag))
        return done

    def cli_writer(n: int) -> list[tuple[int, str]]:
        done = []
        for i in range(4):
            tag = f"cli-{n}-{i}"
            out = subprocess.run(
                [ARGONFS, "--mongo", mongo_uri, "--repo", repo_name, "put", "main", "c", "-"],
                env={**env, "ARGONFS_AUTHOR": "cli-writer"},
                input=json.dumps({"_id": "shared", "w": tag}),
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
            done.append((int(out.rsplit("@", 1)[1]), tag))
        return done

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(api_writer, n) for n in range(4)] + [pool.submit(cli_writer, n) for n in range(2)]
        written = [w for f in futures for w in f.result()]
    assert len(written) == 108 and len({seq for seq, _ in written}) == 108  # every write its own version
    for seq, tag in written:  # and each one is there, as written, at its seq
        assert s.json(f"/api/v1/refs/main@{seq}/collections/c/documents/shared")["document"]["w"] == tag
    history = s.json(path + "/history?limit=1000")
    authors = {h["seq"]: h["author"] for h in history["items"]}
    assert authors == {seq: "server-owner" if tag.startswith("api") else "cli-writer" for seq, tag in written}  # the token's name, the CLI's author
    assert stop(s) == 0
