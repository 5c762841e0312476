"""Cursor pagination over thousands of documents: every document once, in name order,
all pages from the snapshot of the first, and cursors that do not fit refused."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from argonfs.console.app import create_app
from argonfs.console.auth import Policy, Token
from tests.console.helpers import API, AUTH, make_client, problem

N = 3000
DOCS = f"{API}/refs/{{ref}}/collections/big/documents"


@pytest.fixture
def big(repo):
    repo.import_documents("main", "big", ({"_id": f"d{i:05d}", "i": i} for i in range(N)))
    return repo


def walk(client, ref: str, limit: int, **params) -> tuple[list[dict], int, set[str]]:
    items, pages, ats, cursor = [], 0, set(), None
    while True:
        page = client.get(DOCS.format(ref=ref), params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})}).json()
        items += page["items"]
        ats.add(page["at"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            return items, pages, ats


@pytest.mark.deadline(300)
def test_walk_thousands_of_documents(big, client) -> None:
    items, pages, ats = walk(client, "main", 700)
    assert [e["stem"] for e in items] == [f"d{i:05d}" for i in range(N)]
    assert pages == 5 and ats == {f"main@{big.head('main')}"}
    default = client.get(DOCS.format(ref="main")).json()
    assert len(default["items"]) == 100 and default["next"]
    most = client.get(DOCS.format(ref="main"), params={"limit": 1000, "bodies": "true"}).json()
    assert [e["document"]["i"] for e in most["items"]] == list(range(1000))
    problem(client.get(DOCS.format(ref="main"), params={"limit": 1001}), 422, "invalid_request")


@pytest.mark.deadline(300)
def test_pages_keep_the_first_pages_snapshot_while_the_branch_moves(big, client) -> None:
    first = client.get(DOCS.format(ref="main"), params={"limit": 1000}).json()
    head = big.head("main")
    assert first["at"] == f"main@{head}"
    # writes after the first page: a new name in the middle, a deletion near the end
    assert client.put(DOCS.format(ref="main") + "/d01500x", content=b"{}", headers=AUTH).status_code == 200
    assert client.delete(DOCS.format(ref="main") + "/d02999", headers=AUTH).status_code == 200
    items, cursor = first["items"], first["next"]
    while cursor:
        page = client.get(DOCS.format(ref="main"), params={"limit": 1000, "cursor": cursor}).json()
        assert page["at"] == first["at"]
        items += page["items"]
        cursor = page["next"]
    assert len(items) == N and items[-1]["stem"] == "d02999"
    # a new walk sees the new state
    now, _, ats = walk(client, "main", 1000)
    assert len(now) == N and "d01500x" in {e["stem"] for e in now} and ats == {f"main@{head + 2}"}


def test_cursors_that_do_not_fit_are_refused(repo, client) -> None:
    repo.import_documents("main", "big", ({"_id": i} for i in range(5)))
    repo.create_bundle("main", "b", label="prod")
    cursor = client.get(DOCS.format(ref="main"), params={"limit": 2}).json()["next"]
    problem(client.get(DOCS.format(ref="prod"), params={"cursor": cursor}), 400, "invalid_cursor")
    for junk in ("garbage", "eyJ4IjogMX0", "%%%"):
        problem(client.get(DOCS.format(ref="main"), params={"cursor": junk}), 400, "invalid_cursor")
    # the branch the first page came from was deleted and made again under its name
    repo.create_branch("exp")
    cursor = client.get(DOCS.format(ref="exp"), params={"limit": 2}).json()["next"]
    repo.delete_branch("exp")
    repo.create_branch("exp")
    problem(client.get(DOCS.format(ref="exp"), params={"cursor": cursor}), 409, "conflict")
    # a label's walk stays in the bundle the label named at its first page
    cursor = client.get(DOCS.format(ref="prod"), params={"limit": 2}).json()["next"]
    repo.put("main", "big", {"_id": 100})
    repo.set_label("prod", repo.create_bundle("main", "b2").id)
    rest = client.get(DOCS.format(ref="prod"), params={"limit": 10, "cursor": cursor}).json()
    assert [e["stem"] for e in rest["items"]] == ["2", "3", "4"]


def test_only_cursors_this_server_signed_are_taken(repo, client) -> None:
    repo.import_documents("main", "big", ({"_id": i} for i in range(5)))
    repo.create_branch("other")
    repo.put("other", "big", {"_id": 99})
    cursor = client.get(DOCS.format(ref="main"), params={"limit": 2}).json()["next"]
    payload, _, mac = cursor.partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # the same listing pointed at another branch's state, with the MAC of the original
    data["a"], data["b"] = f"other@{repo.head('other')}", str(repo.branch("other").id)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=") + "." + mac
    problem(client.get(DOCS.format(ref="main"), params={"cursor": forged}), 400, "invalid_cursor")
    problem(client.get(DOCS.format(ref="main"), params={"cursor": payload}), 400, "invalid_cursor")
    # a server started again with the same token takes it; one with another token does not
    again = make_client(repo)
    assert [e["stem"] for e in again.get(DOCS.format(ref="main"), params={"cursor": cursor}).json()["items"]] == ["2", "3", "4"]
    other = TestClient(create_app(repo, Policy(Token("x", "another-token"), reads_need_token=False, hosts=None)))
    problem(other.get(DOCS.format(ref="main"), params={"cursor": cursor}), 400, "invalid_cursor")
