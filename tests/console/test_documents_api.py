"""/api/v1/refs/{ref}/...: collections, documents, history, put and delete, at every kind
of ref, against a real repository."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.console.helpers import API, AUTH, problem

DOCS = f"{API}/refs/{{ref}}/collections/{{c}}/documents"


def docs(ref: str, c: str = "people") -> str:
    return DOCS.format(ref=ref, c=c)


def names(client, ref: str, c: str = "people") -> list[str]:
    return [e["name"] for e in client.get(docs(ref, c)).json()["items"]]


def test_every_kind_of_ref(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "v": 1})
    bundle = repo.create_bundle("main", "one", label="prod")
    time.sleep(0.01)
    t = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    time.sleep(0.01)
    repo.put("main", "people", {"_id": "alan", "v": 1})
    repo.put("main", "things", {"_id": 1})
    assert client.get(f"{API}/refs/main/collections").json() == {"ref": "main", "at": "main@3", "collections": ["people", "things"]}
    assert client.get(f"{API}/refs/main@1/collections").json()["collections"] == ["people"]
    assert names(client, "main") == ["ada.json", "alan.json"]
    for ref in ("main@1", f"main@{t}", bundle.id, "prod"):
        assert names(client, ref) == ["ada.json"], ref
    assert client.get(docs("prod")).json()["at"] == bundle.id
    assert client.get(docs(f"main@{t}")).json()["at"] == "main@1"
    problem(client.get(docs("main", "nothing")), 404, "not_found")
    problem(client.get(f"{API}/refs/nope/collections"), 404, "not_found")


def test_listing_fields_and_bodies(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "born": {"$date": "1815-12-10T00:00:00Z"}})
    repo.put("main", "people", {"_id": 42, "n": 1})
    plain = client.get(docs("main")).json()["items"]
    assert [e["stem"] for e in plain] == ["42", "ada"] and all(e["document"] is None for e in plain)
    entry = plain[1]
    assert entry["size"] > 0 and entry["seq"] == 1 and entry["author"] == "tester" and len(entry["hash"]) == 32
    full = client.get(docs("main"), params={"bodies": "true"}).json()["items"]
    assert full[0]["document"] == {"_id": 42, "n": 1}
    assert full[1]["document"]["born"] == {"$date": "1815-12-10T00:00:00Z"}


def test_one_document_by_stem_or_file_name(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "name": "Ada"})
    got = client.get(docs("main") + "/ada").json()
    assert got["document"] == {"_id": "ada", "name": "Ada"} and got["name"] == "ada.json" and got["seq"] == 1
    assert client.get(docs("main") + "/ada.json").json() == got
    problem(client.get(docs("main") + "/nobody"), 404, "not_found")


def test_history_and_any_version_by_slot(repo, client) -> None:
    for v in range(5):
        repo.put("main", "people", {"_id": "ada", "v": v})
    repo.delete("main", "people", "ada")
    repo.put("main", "people", {"_id": "ada", "v": 99})
    history = client.get(docs("main") + "/ada/history").json()
    assert [h["op"] for h in history["items"]] == ["put", "del", "put", "put", "put", "put", "put"]
    assert history["next"] is None and history["at"] == "main@7"
    oldest = history["items"][-1]
    assert client.get(docs("main") + "/ada", params={"slot": oldest["slot"]}).json()["document"] == {"_id": "ada", "v": 0}
    problem(client.get(docs("main") + "/ada", params={"slot": history["items"][1]["slot"]}), 404, "not_found")  # a delete has no content
    # paged, from the snapshot of the first page even while the document changes
    first = client.get(docs("main") + "/ada/history", params={"limit": 3}).json()
    repo.put("main", "people", {"_id": "ada", "v": 100})
    walked, page = first["items"], first
    while page["next"]:
        page = client.get(docs("main") + "/ada/history", params={"limit": 3, "cursor": page["next"]}).json()
        walked += page["items"]
    assert walked == history["items"]
    problem(client.get(docs("main") + "/nobody/history"), 404, "not_found")


def test_history_reaches_into_the_parent(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "v": 1})
    repo.create_branch("exp")
    repo.put("exp", "people", {"_id": "ada", "v": 2})
    items = client.get(docs("exp") + "/ada/history").json()["items"]
    assert [(h["branch"], h["seq"]) for h in items] == [("exp", 1), ("main", 1)]


def test_put_and_delete_write_as_the_tokens_name(repo, client) -> None:
    r = client.put(docs("main") + "/ada", content=b'{"name": "Ada"}', headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"ref": "main", "collection": "people", "name": "ada.json", "stem": "ada", "seq": 1, "author": "alice"}
    assert repo.get("main", "people", "ada").doc == {"_id": "ada", "name": "Ada"}
    r = client.put(docs("main") + "/42.json", content=b'{"_id": 42, "when": {"$date": "2026-01-01T00:00:00Z"}}', headers=AUTH)
    assert r.json()["stem"] == "42" and repo.get("main", "people", "42").doc["_id"] == 42
    entry = next(iter(repo.log("main")))
    assert entry.author == "alice" and entry.stem == "42"
    r = client.delete(docs("main") + "/ada", headers=AUTH)
    assert r.status_code == 200 and r.json()["seq"] == 3 and r.json()["author"] == "alice"
    assert names(client, "main") == ["42.json"]
    problem(client.delete(docs("main") + "/ada", headers=AUTH), 404, "not_found")
    # another branch keeps what main deleted
    assert client.get(docs("main@1") + "/ada").json()["document"]["name"] == "Ada"


def test_refused_writes(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada"})
    bundle = repo.create_bundle("main", "one", label="prod")
    problem(client.put(docs("main") + "/ada", content=b'{"_id": "bob"}', headers=AUTH), 400, "invalid_document")
    problem(client.put(docs("main") + "/ada", content=b"[1, 2]", headers=AUTH), 400, "invalid_document")
    problem(client.put(docs("main") + "/ada", content=b"", headers=AUTH), 400, "invalid_document")
    problem(client.put(docs("main", "$bad") + "/ada", content=b"{}", headers=AUTH), 400, "invalid_name")
    for ref in (bundle.id, "prod", "main@1"):
        problem(client.put(docs(ref) + "/ada", content=b"{}", headers=AUTH), 403, "read_only")
        problem(client.delete(docs(ref) + "/ada", headers=AUTH), 403, "read_only")
    repo.protect_branch("main")
    body = problem(client.put(docs("main") + "/ada", content=b'{"x": 1}', headers=AUTH), 403, "protected")
    assert "protected" in body["message"]
    problem(client.delete(docs("main") + "/ada", headers=AUTH), 403, "protected")
    assert repo.get("main", "people", "ada").doc == {"_id": "ada"}
