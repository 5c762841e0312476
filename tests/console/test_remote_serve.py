"""`argonfs serve --remote URL`: a remote's bundles, labels and documents, read-only and
with no MongoDB, at the same paths and in the same shapes as the API over a repository.

A repository is pushed to a directory remote (S3 and GCS emulators too, in one test) by
the real push code; the app is then built over the remote alone (no repository object
exists for it) and compared with the MongoDB-backed app's answers over the same bundle,
and a real `argonfs serve --remote` process runs with a MongoDB that does not exist."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from argonfs.cli import main
from argonfs.console.auth import LOOPBACK_HOSTS, Policy
from argonfs.console.remote import create_remote_app
from argonfs.remote.format import bundle_key
from argonfs.remote.objects import open_store
from argonfs.remote.push import push_bundle
from argonfs.remote.reading import Remote
from argonfs.remote.snapshots import RemoteCatalog
from tests.console.helpers import API, AUTH, TOKEN, make_client, problem
from tests.console.processes import ARGONFS, Served, stop
from tests.remote import fixtures

# the remote tests' fixtures (a fresh directory or bucket per test; the emulators), here
make_remote, remote_env, create_bucket = fixtures.make_remote, fixtures.remote_env, fixtures.create_bucket
gcs_emulator, s3_emulator, azure_emulator = fixtures.gcs_emulator, fixtures.s3_emulator, fixtures.azure_emulator

#: a MongoDB nothing listens on: a server that tried to use it would fail
NO_MONGO = {"ARGONFS_MONGO_URI": "mongodb://127.0.0.1:1", "ARGONFS_MONGO_TIMEOUT_MS": "300"}
PAPERS = 250


@dataclass
class Published:
    repo: Any
    url: str
    v1: str
    v2: str


def publish(repo: Any, url: str) -> Published:
    """Bundle v1 (label ``old``), then v2 (label ``prod``, which pointed at v1 before),
    pushed to the remote at ``url``; label ``gone`` set and then deleted on the remote."""
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}", "body": "x" * (i * 37 % 300)} for i in range(PAPERS)))
    repo.put("main", "authors", {"_id": "ada", "name": "Ada", "born": {"$date": "1815-12-10T00:00:00Z"}})
    repo.put("main", "authors", {"_id": "a/b", "name": "slash"})  # the file ~sa%2Fb.json
    repo.create_collection("main", "empty")
    v1 = repo.create_bundle("main", "v1").id
    remote = Remote(open_store(url))
    push_bundle(repo, remote, v1)
    repo.set_label("prod", v1)
    push_bundle(repo, remote, v1, label="prod")
    repo.set_label("old", v1)
    push_bundle(repo, remote, v1, label="old")
    repo.put("main", "authors", {"_id": "ada", "name": "Ada Lovelace"})
    v2 = repo.create_bundle("main", "v2").id
    repo.set_label("prod", v2)
    push_bundle(repo, remote, v2, label="prod")
    remote.set_label("gone", v1, author="someone", time_ns=time.time_ns())
    remote.set_label("gone", None, author="someone", time_ns=time.time_ns())
    return Published(repo, url, v1, v2)


@pytest.fixture
def published(repo: Any, make_remote: Callable[..., Any]) -> Published:
    return publish(repo, make_remote("local").url)


def remote_client(url: str, *, reads_need_token: bool = False) -> TestClient:
    """The app over the remote alone: no repository, no MongoDB client."""
    policy = Policy(TOKEN, reads_need_token=reads_need_token, hosts=None if reads_need_token else LOOPBACK_HOSTS)
    return TestClient(create_remote_app(RemoteCatalog(Remote(open_store(url))), policy), base_url="http://127.0.0.1", raise_server_exceptions=False)


@pytest.fixture
def client(published: Published) -> Iterator[TestClient]:
    with remote_client(published.url) as c:
        yield c


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def same_fields(item: dict[str, Any], *, drop: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in drop}


# ---------------------------------------------------------------------- the API


def test_bundles_newest_first_a_page_at_a_time_as_in_the_repository(published: Published, client: TestClient) -> None:
    page = ok(client.get(f"{API}/bundles"))
    assert [b["id"] for b in page["items"]] == [published.v2, published.v1] and page["next"] is None
    first = ok(client.get(f"{API}/bundles", params={"limit": 1}))
    assert [b["id"] for b in first["items"]] == [published.v2] and first["next"]
    second = ok(client.get(f"{API}/bundles", params={"limit": 1, "cursor": first["next"]}))
    assert [b["id"] for b in second["items"]] == [published.v1] and second["next"] is None
    problem(client.get(f"{API}/bundles", params={"cursor": first["next"] + "x"}), 400, "invalid_cursor")
    problem(client.get(f"{API}/bundles", params={"limit": 0}), 422, "invalid_request")

    mongo = make_client(published.repo)
    for bundle in (published.v1, published.v2):  # the same fields as the repository's own bundle
        here = ok(client.get(f"{API}/bundles/{bundle}"))
        assert same_fields(here, drop=("labels",)) == same_fields(ok(mongo.get(f"{API}/bundles/{bundle}")), drop=("labels",))
    assert ok(client.get(f"{API}/bundles/{published.v1}"))["labels"] == ["old"]
    assert ok(client.get(f"{API}/bundles/{published.v2}"))["labels"] == ["prod"]
    problem(client.get(f"{API}/bundles/{'0' * 14}"), 404, "not_found")
    problem(client.get(f"{API}/bundles/..%2Fargonfs-remote"), 404, "not_found")


def test_labels_and_their_history_on_the_remote(published: Published, client: TestClient) -> None:
    labels = ok(client.get(f"{API}/labels"))
    assert [(lab["name"], lab["bundle"]) for lab in labels] == [("old", published.v1), ("prod", published.v2)]  # "gone" is deleted
    assert all(set(lab) == {"name", "bundle", "time", "author"} and lab["time"].endswith("Z") for lab in labels)
    assert ok(client.get(f"{API}/labels/prod"))["bundle"] == published.v2
    problem(client.get(f"{API}/labels/gone"), 404, "not_found")
    problem(client.get(f"{API}/labels/nope"), 404, "not_found")
    problem(client.get(f"{API}/labels/.hidden"), 400, "invalid_name")

    history = ok(client.get(f"{API}/labels/prod/history"))
    assert [(h["op"], h["bundle"]) for h in history] == [("set", published.v2), ("set", published.v1)]  # newest first
    gone = ok(client.get(f"{API}/labels/gone/history"))
    assert [(h["op"], h["bundle"], h["author"]) for h in gone] == [("delete", None, "someone"), ("set", published.v1, "someone")]
    problem(client.get(f"{API}/labels/nope/history"), 404, "not_found")


def test_collections_and_documents_at_a_bundle_or_a_label_as_in_the_repository(published: Published, client: TestClient) -> None:
    mongo = make_client(published.repo)
    for ref, at in ((published.v1, published.v1), ("prod", published.v2), ("old", published.v1)):
        assert ok(client.get(f"{API}/refs/{ref}/collections")) == {"ref": ref, "at": at, "collections": ["authors", "empty", "papers"]}
    problem(client.get(f"{API}/refs/nope/collections"), 404, "not_found")
    problem(client.get(f"{API}/refs/main/collections"), 404, "not_found")  # a branch of the repository, not of the remote

    # a walk of 250 documents, 100 a page, the same names, sizes, hashes and times as the repository's
    names, cursor = [], None
    while True:
        page = ok(client.get(f"{API}/refs/prod/collections/papers/documents", params={"cursor": cursor} if cursor else {}))
        assert page["at"] == published.v2 and len(page["items"]) <= 100
        names += [e["name"] for e in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    expected = [e.stem + ".json" for e in published.repo.entries(published.repo.pin(published.v2), "papers")]
    assert names == expected and len(names) == PAPERS
    keep = ("name", "stem", "size", "hash", "time")
    here = ok(client.get(f"{API}/refs/{published.v2}/collections/authors/documents", params={"bodies": "true"}))
    there = ok(mongo.get(f"{API}/refs/{published.v2}/collections/authors/documents", params={"bodies": "true"}))
    assert [{k: e[k] for k in (*keep, "document")} for e in here["items"]] == [{k: e[k] for k in (*keep, "document")} for e in there["items"]]
    bundle = ok(client.get(f"{API}/bundles/{published.v2}"))  # a remote keeps no document's own seq or author: the bundle's
    assert {(e["seq"], e["author"]) for e in here["items"]} == {(bundle["seq"], "tester")}
    assert ok(client.get(f"{API}/refs/prod/collections/empty/documents")) == {
        "ref": "prod",
        "at": published.v2,
        "collection": "empty",
        "items": [],
        "next": None,
    }
    problem(client.get(f"{API}/refs/prod/collections/nope/documents"), 404, "not_found")
    problem(client.get(f"{API}/refs/old/collections/papers/documents", params={"cursor": page_cursor(client)}), 400, "invalid_cursor")

    # one document, with or without .json, the same as the repository's (a name with % in
    # it: the real process's test, since the TestClient decodes a path twice)
    for name in ("ada", "ada.json"):
        doc = ok(client.get(f"{API}/refs/prod/collections/authors/documents/{name}"))
        mine = ok(mongo.get(f"{API}/refs/{published.v2}/collections/authors/documents/{name}"))
        assert same_fields(doc, drop=("ref", "seq", "author")) == same_fields(mine, drop=("ref", "seq", "author"))
        assert doc["document"]["name"] == "Ada Lovelace" and doc["ref"] == "prod"
    assert ok(client.get(f"{API}/refs/old/collections/authors/documents/ada"))["document"] == {
        "_id": "ada",
        "name": "Ada",
        "born": {"$date": "1815-12-10T00:00:00Z"},
    }
    problem(client.get(f"{API}/refs/prod/collections/authors/documents/nobody"), 404, "not_found")
    problem(client.get(f"{API}/refs/prod/collections/authors/documents/ada", params={"slot": 1}), 404, "not_found")
    problem(client.get(f"{API}/refs/prod/collections/authors/documents/ada/history"), 404, "not_found")


def page_cursor(client: TestClient) -> str:
    cursor: str = ok(client.get(f"{API}/refs/prod/collections/papers/documents", params={"limit": 1}))["next"]
    return cursor


def test_a_walk_stays_on_the_bundle_its_first_page_resolved(published: Published, client: TestClient) -> None:
    first = ok(client.get(f"{API}/refs/prod/collections/authors/documents", params={"limit": 1}))
    assert first["at"] == published.v2 and first["next"]
    # a push moves the label while the walk goes on: its next page is still v2's
    published.repo.put("main", "authors", {"_id": "zed", "name": "Zed"})
    v3 = published.repo.create_bundle("main", "v3").id
    push_bundle(published.repo, Remote(open_store(published.url)), v3, label="prod")
    rest = ok(client.get(f"{API}/refs/prod/collections/authors/documents", params={"cursor": first["next"]}))
    assert rest["at"] == published.v2 and [e["stem"] for e in rest["items"]] == ["~sa%2Fb"]
    again = ok(client.get(f"{API}/refs/prod/collections/authors/documents"))  # a new walk sees the new bundle
    assert again["at"] == v3 and [e["stem"] for e in again["items"]] == ["ada", "zed", "~sa%2Fb"]
    assert ok(client.get(f"{API}/labels/prod"))["bundle"] == v3


def test_a_remote_has_no_branches(client: TestClient) -> None:
    assert ok(client.get(f"{API}/branches")) == []
    problem(client.get(f"{API}/branches/main"), 404, "not_found")


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["no token", "token"])
def test_every_write_is_read_only(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in [
        ("PUT", f"{API}/refs/prod/collections/authors/documents/ada"),
        ("DELETE", f"{API}/refs/prod/collections/authors/documents/ada"),
        ("POST", f"{API}/branches"),
        ("DELETE", f"{API}/branches/main"),
        ("PUT", f"{API}/branches/main/protection"),
        ("PUT", f"{API}/labels/prod"),
        ("PATCH", f"{API}/anything/at/all"),
    ]:
        body = problem(client.request(method, path, content=b'{"name": "x"}', headers=headers), 403, "read_only")
        assert "read-only" in body["message"]
    page = client.post("/", headers=headers)
    assert page.status_code == 403 and "read_only" in page.text and page.headers["content-type"].startswith("text/html")


def test_unknown_paths_are_404_and_the_schema_lists_the_reads(client: TestClient) -> None:
    problem(client.get(f"{API}/nope"), 404, "not_found")
    problem(client.get(f"{API}/refs/prod/collections/papers/documents/7/nope"), 404, "not_found")
    page = client.get("/nope/at/all")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    schema = ok(client.get(f"{API}/openapi.json"))
    assert f"{API}/labels/{{name}}/history" in schema["paths"] and "put" not in schema["paths"].get(
        f"{API}/refs/{{ref}}/collections/{{collection}}/documents/{{name}}", {}
    )


def test_off_loopback_every_request_needs_the_token(published: Published) -> None:
    with remote_client(published.url, reads_need_token=True) as c:
        problem(c.get(f"{API}/bundles"), 401, "unauthorized")
        assert c.get("/").status_code == 401
        assert len(ok(c.get(f"{API}/bundles", headers=AUTH))["items"]) == 2


def test_a_corrupt_remote_answers_an_error_not_a_traceback(published: Published, client: TestClient) -> None:
    store = open_store(published.url)

    def damage(key: str) -> None:
        """The same length, other bytes: only the hashes can tell."""
        data = store.get(key)
        store.delete(key)
        assert store.put_if_absent(key, bytes(b ^ 1 for b in data))

    # the packs: their documents are 502 corrupt; the listing (manifests only) still answers
    doc = ok(client.get(f"{API}/refs/{published.v1}/collections/papers/documents/7"))
    for o in list(store.list("packs/")):
        damage(o.key)
    with remote_client(published.url) as fresh:  # nothing cached in memory
        problem(fresh.get(f"{API}/refs/{published.v1}/collections/papers/documents/7"), 502, "corrupt")
        problem(fresh.get(f"{API}/refs/{published.v1}/collections/papers/documents", params={"bodies": "true"}), 502, "corrupt")
        assert ok(fresh.get(f"{API}/refs/{published.v1}/collections/papers/documents"))["items"]
        page = fresh.get(f"/refs/{published.v1}/collections/papers/documents/7")
        assert page.status_code == 502 and "corrupt" in page.text and "Traceback" not in page.text
    assert doc["document"]["_id"] == 7

    # a descriptor: that bundle is 502 corrupt, and left out of the list of bundles
    damage(bundle_key(published.v1))
    with remote_client(published.url) as fresh:
        problem(fresh.get(f"{API}/bundles/{published.v1}"), 502, "corrupt")
        problem(fresh.get(f"{API}/refs/old/collections"), 502, "corrupt")
        assert [b["id"] for b in ok(fresh.get(f"{API}/bundles"))["items"]] == [published.v2]


# ---------------------------------------------------------------------- the pages


def test_the_pages_go_from_bundles_and_labels_to_a_document(published: Published, client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert f'href="/refs/{published.v1}"' in home.text and f'href="/refs/{published.v2}"' in home.text and 'href="/refs/prod"' in home.text
    assert published.url in home.text and "gone" not in home.text
    refs = client.get("/refs/prod")
    assert refs.status_code == 200 and 'href="/refs/prod/collections/papers"' in refs.text and published.v2 in refs.text
    papers = client.get("/refs/prod/collections/papers")
    assert papers.status_code == 200 and papers.text.count('class="document"') == 100
    nxt = re.search(r'id="next" href="\?cursor=([^"]+)"', papers.text)
    assert nxt is not None
    second = client.get(f"/refs/prod/collections/papers?cursor={nxt.group(1)}")
    assert second.status_code == 200 and second.text.count('class="document"') == 100 and 'id="first"' in second.text
    authors = client.get("/refs/prod/collections/authors")
    assert 'href="/refs/prod/collections/authors/documents/~sa%252Fb"' in authors.text
    doc = client.get("/refs/prod/collections/authors/documents/ada")
    assert doc.status_code == 200 and "Ada Lovelace" in doc.text
    missing = client.get("/refs/nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html") and "not_found" in missing.text


# ---------------------------------------------------------------------- the other backends


@pytest.mark.deadline(180)
@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_a_bucket_remote_serves_the_same(repo: Any, make_remote: Callable[..., Any], kind: str) -> None:
    published = publish(repo, make_remote(kind).url)
    with remote_client(published.url) as c:
        assert [b["id"] for b in ok(c.get(f"{API}/bundles"))["items"]] == [published.v2, published.v1]
        assert ok(c.get(f"{API}/labels/prod"))["bundle"] == published.v2
        page = ok(c.get(f"{API}/refs/prod/collections/papers/documents", params={"limit": 7, "bodies": "true"}))
        assert [e["document"]["_id"] for e in page["items"]] == [0, 1, 10, 100, 101, 102, 103] and page["next"]
        assert ok(c.get(f"{API}/refs/old/collections/authors/documents/ada"))["document"]["name"] == "Ada"


# ---------------------------------------------------------------------- a real process


@pytest.fixture
def serve_remote(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `argonfs serve --remote URL --port 0` with a MongoDB that does not exist;
    its URL is what it says on stderr.  Stopped (SIGTERM, then SIGKILL) afterwards."""
    started: list[Served] = []

    def start(url: str, *extra: str) -> Served:
        log = tmp_path / f"serve-remote-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([ARGONFS, "serve", "--remote", url, "--port", "0", *extra], env={**env, **NO_MONGO}, stdout=out, stderr=subprocess.STDOUT)
        served = Served(proc, "", log)
        started.append(served)
        deadline = time.monotonic() + 60
        while not served.url:
            if proc.poll() is not None:
                pytest.fail(f"argonfs serve --remote exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"argonfs serve --remote did not say where it serves within 60 s:\n{log.read_text()}")
            said = re.search(r"read-only \(no MongoDB\) at (http://127\.0\.0\.1:\d+)/", log.read_text())
            if said:
                served.url = said.group(1)
            time.sleep(0.05)
        return served

    try:
        yield start
    finally:
        for s in started:
            if s.proc.poll() is None:
                stop(s)


@pytest.mark.deadline(120)
def test_a_real_server_serves_a_remote_with_no_mongodb(published: Published, serve_remote: Callable[..., Served]) -> None:
    s = serve_remote(published.url)
    assert s.json(f"{API}/branches") == []
    assert [b["id"] for b in s.json(f"{API}/bundles")["items"]] == [published.v2, published.v1]  # type: ignore[index]
    assert s.json(f"{API}/refs/prod/collections/authors/documents/ada")["document"]["name"] == "Ada Lovelace"  # type: ignore[index]
    status, data = s.request("PUT", f"{API}/refs/prod/collections/authors/documents/ada", b"{}")
    assert status == 403 and json.loads(data)["error"] == "read_only"
    status, html = s.request("GET", "/refs/prod/collections/authors/documents/ada")
    assert status == 200 and b"Ada Lovelace" in html
    # a name with "%" in it (the _id "a/b" is the file ~sa%2Fb.json), quoted once in the URL
    assert s.json(f"{API}/refs/prod/collections/authors/documents/~sa%252Fb")["document"] == {"_id": "a/b", "name": "slash"}  # type: ignore[index]
    assert s.request("GET", "/refs/prod/collections/authors/documents/~sa%252Fb.json")[0] == 200
    assert stop(s) == 0
    log = s.log.read_text()
    assert "every write answers 403 read_only" in log and "Traceback" not in log and "27017" not in log


def test_the_cli_refuses_what_it_cannot_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGONFS_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    out = runner.invoke(main, ["serve", "--remote", tmp_path.as_uri(), "--mongo", "mongodb://127.0.0.1:1"])
    assert out.exit_code == 2 and "cannot be given with --mongo" in out.stderr
    out = runner.invoke(main, ["--repo", "other", "serve", "--remote", tmp_path.as_uri()])
    assert out.exit_code == 2 and "cannot be given with --repo" in out.stderr
    out = runner.invoke(main, ["serve", "--remote", "origin"])
    assert out.exit_code == 2 and "not a remote's name" in out.stderr
    out = runner.invoke(main, ["serve", "--remote", "ftp://x/y"])
    assert out.exit_code == 2 and "--remote" in out.stderr
    out = runner.invoke(main, ["serve", "--remote", tmp_path.as_uri()])  # a directory, but no remote in it
    assert out.exit_code != 0 and "not an argonfs remote" in out.stderr and out.exc_info is not None and isinstance(out.exc_info[1], SystemExit)
