"""/api/v1 branches, bundles and labels against a real repository."""

from __future__ import annotations

from tests.console.helpers import API, AUTH, problem


def test_branches_list_head_protection_and_last_change(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    repo.create_branch("exp")
    repo.with_author("bob").put("exp", "c", {"_id": 2})
    repo.protect_branch("main")
    branches = {b["name"]: b for b in client.get(f"{API}/branches").json()}
    assert sorted(branches) == ["exp", "main"]
    main, exp = branches["main"], branches["exp"]
    assert main["protected"] is True and exp["protected"] is False
    assert main["head"] == repo.head("main") and exp["head"] == 1
    assert exp["parent"] == "main" and exp["fork_seq"] == 1
    assert exp["last"]["author"] == "bob" and exp["last"]["op"] == "put" and exp["last"]["seq"] == 1
    assert main["last"]["op"] == "protect" and main["last"]["time"].endswith("Z")
    assert client.get(f"{API}/branches/exp").json() == exp


def test_a_branch_without_versions_of_its_own_has_no_last_change(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    repo.create_branch("fresh")
    fresh = client.get(f"{API}/branches/fresh").json()
    assert fresh["head"] == 0 and fresh["last"] is None and fresh["author"] == "tester"
    problem(client.get(f"{API}/branches/nope"), 404, "not_found")


def test_bundles_page_newest_first_with_a_cursor(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    ids = [repo.create_bundle("main", f"b{i}").id for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        page = client.get(f"{API}/bundles", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [b["id"] for b in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3
    assert [b["message"] for b in client.get(f"{API}/bundles").json()["items"]] == ["b4", "b3", "b2", "b1", "b0"]


def test_one_bundle_with_its_labels(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    b = repo.create_bundle("main", "first", label="prod")
    repo.set_label("stable", b.id)
    got = client.get(f"{API}/bundles/{b.id}").json()
    assert got["id"] == b.id and got["branch"] == "main" and got["seq"] == 1 and got["message"] == "first"
    assert got["labels"] == ["prod", "stable"] and got["author"] == "tester"
    problem(client.get(f"{API}/bundles/0000000000zzzz"), 404, "not_found")


def test_labels_and_their_history(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    one = repo.create_bundle("main", "one", label="prod")
    repo.put("main", "c", {"_id": 2})
    two = repo.create_bundle("main", "two")
    repo.with_author("carol").set_label("prod", two.id)
    assert client.get(f"{API}/labels").json() == [client.get(f"{API}/labels/prod").json()]
    assert client.get(f"{API}/labels/prod").json()["bundle"] == two.id
    history = client.get(f"{API}/labels/prod/history").json()
    assert [(h["op"], h["bundle"], h["author"]) for h in history] == [("set", two.id, "carol"), ("set", one.id, "tester")]
    repo.delete_label("prod")
    assert client.get(f"{API}/labels").json() == []
    problem(client.get(f"{API}/labels/prod"), 404, "not_found")
    assert [h["op"] for h in client.get(f"{API}/labels/prod/history").json()] == ["delete", "set", "set"]
    problem(client.get(f"{API}/labels/never/history"), 404, "not_found")


def test_openapi_schema_lists_the_endpoints(client) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/v1/branches", "/api/v1/bundles", "/api/v1/labels/{name}/history", "/api/v1/refs/{ref}/collections/{collection}/documents/{name}"):
        assert path in paths, sorted(paths)
    assert set(paths["/api/v1/refs/{ref}/collections/{collection}/documents/{name}"]) == {"get", "put", "delete"}
    assert "Problem" in schema["components"]["schemas"]
    assert not any(p == "/" or p.startswith("/refs") for p in paths)  # the pages are not API


def test_create_a_branch_from_any_ref(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    bundle = repo.create_bundle("main", "one", label="prod")
    repo.put("main", "c", {"_id": 2})
    r = client.post(f"{API}/branches", json={"name": "exp"}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["parent"] == "main" and r.json()["fork_seq"] == 2 and r.json()["author"] == "alice"
    for name, ref in (("old", "main@1"), ("frozen", bundle.id), ("released", "prod")):
        got = client.post(f"{API}/branches", json={"name": name, "from": ref}, headers=AUTH).json()
        assert got["fork_seq"] == 1, (ref, got)
        assert [d.stem for d in repo.entries(name, "c")] == ["1"]
    problem(client.post(f"{API}/branches", json={"name": "exp"}, headers=AUTH), 409, "already_exists")
    problem(client.post(f"{API}/branches", json={"name": "a/b"}, headers=AUTH), 400, "invalid_name")
    problem(client.post(f"{API}/branches", json={"name": "x", "from": "nope"}, headers=AUTH), 404, "not_found")
    problem(client.post(f"{API}/branches", json={"from": "main"}, headers=AUTH), 422, "invalid_request")
    problem(client.post(f"{API}/branches", json={"name": "y"}), 401, "unauthorized")
    assert "y" not in {b.name for b in repo.list_branches()}


def test_delete_and_protect_a_branch(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    repo.create_branch("exp")
    repo.create_branch("child", "exp")
    problem(client.delete(f"{API}/branches/exp"), 401, "unauthorized")
    problem(client.delete(f"{API}/branches/exp", headers=AUTH), 409, "conflict")  # child forks from it
    problem(client.delete(f"{API}/branches/main", headers=AUTH), 409, "conflict")  # the default branch
    r = client.put(f"{API}/branches/exp/protection", headers=AUTH)
    assert r.json() == {"branch": "exp", "protected": True, "changed": True}
    assert client.put(f"{API}/branches/exp/protection", headers=AUTH).json()["changed"] is False
    exp = client.get(f"{API}/branches/exp").json()
    assert exp["protected"] is True and exp["last"]["op"] == "protect" and exp["last"]["author"] == "alice"
    problem(client.delete(f"{API}/branches/exp", params={"force": "true"}, headers=AUTH), 403, "protected")
    problem(client.put(f"{API}/refs/exp/collections/c/documents/2", content=b"{}", headers=AUTH), 403, "protected")
    assert client.delete(f"{API}/branches/exp/protection", headers=AUTH).json() == {"branch": "exp", "protected": False, "changed": True}
    assert client.delete(f"{API}/branches/exp", params={"force": "true"}, headers=AUTH).json() == {"name": "exp"}
    assert [b["name"] for b in client.get(f"{API}/branches").json()] == ["child", "main"]
    assert [e.stem for e in repo.entries("child", "c")] == ["1"]  # a fork outlives its parent's name
    problem(client.delete(f"{API}/branches/exp", headers=AUTH), 404, "not_found")
    problem(client.put(f"{API}/branches/nope/protection", headers=AUTH), 404, "not_found")
