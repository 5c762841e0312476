"""Captures and remotes through the API: a real capture process following a real source
(a second SecantusDB server, change streams) shows its state and counters, which move
when the source is written to; the event stream of a real `argonfs serve` delivers the
changing state; a `file://` remote pushed to lists its bundles and labels, and one that
cannot be read answers the one error shape."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from argonfs.remote.objects import open_store
from argonfs.remote.push import push_bundle
from argonfs.remote.reading import Remote
from tests.capture.conftest import Source, source, source_server, spawn  # noqa: F401  (fixtures)
from tests.console.helpers import API, problem
from tests.console.processes import stop

WAIT = 30.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def capture_row(client: Any, branch: str = "live") -> dict[str, Any] | None:
    rows = client.get(f"{API}/captures").json()
    return next((r for r in rows if r["branch"] == branch), None)


@pytest.fixture
def capturing(source: Source, spawn: Callable[..., subprocess.Popen]) -> Iterator[subprocess.Popen]:  # noqa: F811
    """`argonfs capture SOURCE --branch live` over a source with three documents, as a
    process of its own (SIGTERM afterwards; the ``procs`` fixture kills what is left)."""
    source.db.c.insert_many([{"_id": i, "n": 0} for i in range(3)])
    p = spawn("capture", source.uri, "--branch", "live")
    try:
        yield p
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=WAIT)


@pytest.mark.deadline(90)
def test_a_running_capture_shows_its_state_and_counters(client, repo, source: Source, capturing, spawn) -> None:  # noqa: F811
    assert client.get(f"{API}/captures").status_code == 200
    first = wait_for("the first copy's commit", lambda: (r := capture_row(client)) and r["state"] == "following" and r["batches"] >= 1 and r)
    assert first["source"] == source.uri and first["running"] is True and first["pid"] == capturing.pid
    assert first["slot"] is not None and first["applied"] and first["started"] and first["message"] == ""

    source.db.c.insert_one({"_id": 3, "n": 0})
    source.db.c.update_one({"_id": 0}, {"$set": {"n": 1}})
    source.db.c.delete_one({"_id": 1})
    moved = wait_for("three more events applied", lambda: (r := capture_row(client)) and r["events"] >= first["events"] + 3 and r)
    assert moved["batches"] > first["batches"] and moved["slot"] > first["slot"]
    assert moved["event_time"] is not None and moved["lag_s"] is not None and moved["lag_s"] >= 0
    one = client.get(f"{API}/captures/live").json()
    assert (one["branch"], one["source"], one["state"]) == ("live", source.uri, "following") and one["events"] >= moved["events"]
    problem(client.get(f"{API}/captures/nope"), 404, "not_found")

    # the API shows what `argonfs capture list` shows: one list, from one function
    out = spawn("capture", "list", "--json").communicate(timeout=WAIT)[0]
    [listed] = json.loads(out)
    assert {k: listed[k] for k in ("branch", "source", "state", "events", "batches", "slot")} == {
        k: client.get(f"{API}/captures/live").json()[k] for k in ("branch", "source", "state", "events", "batches", "slot")
    }

    capturing.send_signal(signal.SIGTERM)
    assert capturing.wait(timeout=WAIT) == 0
    stopped = client.get(f"{API}/captures/live").json()
    assert (stopped["state"], stopped["running"], stopped["pid"]) == ("stopped", False, None) and "signal" in stopped["message"]

    page = client.get("/captures")
    assert page.status_code == 200 and 'data-branch="live"' in page.text and "stopped" in page.text and "EventSource" in page.text


def read_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event name, parsed data) of each Server-Sent Event of a streamed response."""
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue  # a keep-alive comment
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


@pytest.mark.deadline(90)
def test_the_event_stream_delivers_the_changing_state(serve, repo, repo_name: str, mongo_uri: str, source: Source, capturing) -> None:  # noqa: F811
    s = serve("--debug", "--mongo", mongo_uri, "--repo", repo_name)
    wait_for("the capture to follow", lambda: (r := s.json(f"{API}/captures")) and r[0]["state"] == "following")
    seen: list[dict[str, Any]] = []
    started = time.monotonic()
    with httpx.Client(timeout=httpx.Timeout(10.0)) as http, http.stream("GET", f"{s.url}{API}/captures/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for name, data in read_events(response):
            assert name == "captures", (name, data)
            [row] = data
            seen.append(row)
            if len(seen) == 1:
                assert time.monotonic() - started < 5  # at once on connect, not a second later
                source.db.c.insert_many([{"_id": 10 + i} for i in range(5)])
            if row["events"] >= seen[0]["events"] + 5:
                break
            assert time.monotonic() - started < 30, seen
    assert len(seen) >= 2 and seen[-1]["events"] > seen[0]["events"] and seen[-1]["slot"] > seen[0]["slot"]
    assert seen[-1]["state"] == "following" and seen[-1]["branch"] == "live"

    # a client that goes away ends its stream (the server's debug log says so), long
    # before the server stops
    for _ in range(3):
        with httpx.Client(timeout=10.0) as http, http.stream("GET", f"{s.url}{API}/captures/events") as response:
            next(read_events(response))
    wait_for("four streams to end", lambda: s.log.read_text().count("captures' event stream ended after") == 4, timeout=10)
    assert stop(s) == 0
    assert "Traceback" not in s.log.read_text()


def test_an_open_event_stream_does_not_keep_the_server_from_stopping(serve, repo, repo_name: str, mongo_uri: str) -> None:
    s = serve("--mongo", mongo_uri, "--repo", repo_name)
    with httpx.Client(timeout=10.0) as http, http.stream("GET", f"{s.url}{API}/captures/events") as response:
        events = read_events(response)
        assert next(events) == ("captures", [])
        started = time.monotonic()
        assert stop(s) == 0  # SIGTERM: the stream ends within a second, then the server
        assert time.monotonic() - started < 10
        assert list(events) == []


# ---------------------------------------------------------------------- remotes


@pytest.fixture
def pushed(repo, tmp_path: Path) -> dict[str, Any]:
    """Remote ``backup`` (a directory, file://) holding two bundles of main, the newer
    one labelled ``v1``."""
    url = f"file://{tmp_path / 'backup'}"
    (tmp_path / "backup").mkdir()
    repo.add_remote("backup", url)
    repo.put("main", "papers", {"_id": 1, "title": "one"})
    old = repo.create_bundle("main", "first")
    repo.put("main", "papers", {"_id": 2, "title": "two"})
    repo.put("main", "people", {"_id": "ada"})
    new = repo.create_bundle("main", "second")
    remote = Remote(open_store(url))
    push_bundle(repo, remote, old.id)
    push_bundle(repo, remote, new.id, label="v1")
    return {"url": url, "old": old.id, "new": new.id, "path": tmp_path / "backup"}


def test_remotes_their_bundles_and_labels(client, repo, pushed: dict[str, Any]) -> None:
    [backup] = client.get(f"{API}/remotes").json()
    assert (backup["name"], backup["url"], backup["author"]) == ("backup", pushed["url"], "tester") and backup["time"].endswith("Z")
    bundles = client.get(f"{API}/remotes/backup/bundles").json()
    assert [b["id"] for b in bundles] == [pushed["new"], pushed["old"]]  # newest first
    assert (bundles[0]["documents"], bundles[0]["collections"], bundles[0]["message"]) == (3, {"papers": 2, "people": 1}, "second")
    assert (bundles[1]["documents"], bundles[1]["branch"], bundles[1]["author"]) == (1, "main", "tester")
    [label] = client.get(f"{API}/remotes/backup/labels").json()
    assert (label["name"], label["bundle"], label["slot"], label["author"]) == ("v1", pushed["new"], 1, "tester")
    problem(client.get(f"{API}/remotes/nope/bundles"), 404, "not_found")

    page = client.get("/remotes")
    assert page.status_code == 200 and pushed["new"] in page.text and pushed["old"] in page.text and ">v1<" in page.text


def test_a_remote_that_cannot_be_read_answers_the_error_shape(client, repo, pushed: dict[str, Any], tmp_path: Path) -> None:
    repo.add_remote("gone", f"file://{tmp_path / 'no-such-directory'}")
    for what in ("bundles", "labels"):
        body = problem(client.get(f"{API}/remotes/gone/{what}"), 503, "remote_unavailable")
        assert "no-such-directory" in body["message"]
    (tmp_path / "empty").mkdir()
    repo.add_remote("empty", f"file://{tmp_path / 'empty'}")
    assert "not an argonfs remote" in problem(client.get(f"{API}/remotes/empty/bundles"), 502, "not_a_remote")["message"]
    # a remote whose bundle descriptor was tampered with: corrupt, never data
    shutil.copytree(pushed["path"], tmp_path / "tampered")
    descriptor = tmp_path / "tampered" / "bundles" / f"{pushed['new']}.json"
    descriptor.write_bytes(descriptor.read_bytes().replace(b"second", b"SECOND"))
    repo.add_remote("tampered", f"file://{tmp_path / 'tampered'}")
    problem(client.get(f"{API}/remotes/tampered/bundles"), 502, "corrupt")
    # the page shows every remote, and why one cannot be read
    page = client.get("/remotes")
    assert page.status_code == 200 and pushed["new"] in page.text
    assert "remote_unavailable: " in page.text and "not_a_remote: " in page.text and "corrupt: " in page.text
