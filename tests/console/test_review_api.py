"""/api/v1: the log (filters, position paging), the diff of two refs (fields, paging),
merge preview and apply (the race: target moved -> 409, nothing written) and revert,
against a real repository."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.console.helpers import API, AUTH, problem


def stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def walk(client, url: str, params: dict, key: str = "items") -> tuple[list[dict], int]:
    """Every item of a paged listing, and the number of pages."""
    items, pages, cursor = [], 0, None
    while True:
        answer = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body[key]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return items, pages


def test_log_filters_and_position_paging(repo, client) -> None:
    for i in range(30):
        repo.with_author("ann" if i % 3 else "bob").put("main", "people" if i % 2 else "things", {"_id": i, "v": i})
    middle = stamp()
    time.sleep(0.01)
    repo.create_branch("dev")
    for i in range(5):
        repo.put("dev", "people", {"_id": 100 + i})
    whole = [(e["branch"], e["slot"]) for e in client.get(f"{API}/refs/dev/log", params={"limit": 1000}).json()["items"]]
    assert len(whole) == 35 and whole[0] == ("dev", 5) and whole[5] == ("main", 30)

    items, pages = walk(client, f"{API}/refs/dev/log", {"limit": 7})
    assert [(e["branch"], e["slot"]) for e in items] == whole and pages == 5  # across the fork point too

    bob, _ = walk(client, f"{API}/refs/dev/log", {"author": "bob", "limit": 3})
    assert [e["seq"] for e in bob] == [28, 25, 22, 19, 16, 13, 10, 7, 4, 1] and {e["author"] for e in bob} == {"bob"}
    people = client.get(f"{API}/refs/main/log", params={"collection": "people", "limit": 100}).json()["items"]
    assert len(people) == 15 and {e["collection"] for e in people} == {"people"}
    one = client.get(f"{API}/refs/dev/log", params={"collection": "people", "id": "7.json"}).json()["items"]
    assert [(e["branch"], e["seq"], e["op"], e["name"]) for e in one] == [("main", 8, "put", "7.json")]
    newer = client.get(f"{API}/refs/dev/log", params={"since": middle}).json()["items"]
    assert [e["branch"] for e in newer] == ["dev"] * 5
    older = client.get(f"{API}/refs/dev/log", params={"until": middle, "author": "ann", "limit": 2}).json()
    assert [e["seq"] for e in older["items"]] == [30, 29] and older["next"]

    problem(client.get(f"{API}/refs/dev/log", params={"id": "7"}), 400, "invalid_name")
    problem(client.get(f"{API}/refs/nope/log"), 404, "not_found")
    problem(client.get(f"{API}/refs/dev/log", params={"cursor": "x.y"}), 400, "invalid_cursor")
    problem(client.get(f"{API}/refs/dev/log", params={"since": "yesterday"}), 422, "invalid_request")


def test_log_pages_stay_on_their_snapshot(repo, client) -> None:
    for i in range(6):
        repo.put("main", "c", {"_id": i})
    first = client.get(f"{API}/refs/main/log", params={"limit": 3}).json()
    assert first["at"] == "main@6"
    repo.put("main", "c", {"_id": 99})
    rest = client.get(f"{API}/refs/main/log", params={"limit": 3, "cursor": first["next"]}).json()
    assert [e["seq"] for e in rest["items"]] == [3, 2, 1] and rest["at"] == "main@6"


def test_diff_down_to_fields_and_paged(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "born": 1815, "tags": ["math", "poetry"], "name": {"first": "Ada"}})
    repo.put("main", "people", {"_id": "alan", "born": 1912})
    repo.create_branch("dev")
    repo.put("dev", "people", {"_id": "ada", "born": 1815, "tags": ["math", "engines"], "name": {"first": "Ada", "last": "Lovelace"}})
    repo.delete("dev", "people", "alan")
    repo.put("dev", "people", {"_id": "grace", "born": {"$date": "1906-12-09T00:00:00Z"}})
    body = client.get(f"{API}/diff", params={"from": "main", "to": "dev"}).json()
    assert body["from"] == "main" and body["at_from"] == "main@2" and body["at_to"] == "dev@3" and body["next"] is None
    assert [(i["stem"], i["change"]) for i in body["items"]] == [("ada", "modified"), ("alan", "removed"), ("grace", "added")]
    fields = {f["path"]: f for f in body["items"][0]["fields"]}
    assert fields["tags[1]"] == {"path": "tags[1]", "change": "modified", "old": "poetry", "new": "engines"}
    assert fields["name.last"] == {"path": "name.last", "change": "added", "old": None, "new": "Lovelace"}

    for i in range(25):
        repo.put("dev", "things", {"_id": i})
    items, pages = walk(client, f"{API}/diff", {"from": "main", "to": "dev", "limit": 10})
    assert len(items) == 28 and pages == 3 and [i["collection"] for i in items[:3]] == ["people"] * 3
    assert client.get(f"{API}/diff", params={"from": "dev", "to": "main", "collection": "things"}).json()["items"][0]["change"] == "removed"
    first = client.get(f"{API}/diff", params={"from": "main", "to": "dev", "limit": 10}).json()
    problem(client.get(f"{API}/diff", params={"from": "main", "to": "main@1", "cursor": first["next"]}), 400, "invalid_cursor")
    problem(client.get(f"{API}/diff", params={"from": "main", "to": "nope"}), 404, "not_found")
    problem(client.get(f"{API}/diff", params={"from": "main"}), 422, "invalid_request")


def _diverge(repo) -> None:
    repo.put("main", "people", {"_id": "ada", "born": 1815, "city": "London"})
    repo.put("main", "people", {"_id": "alan", "born": 1912})
    repo.create_branch("dev")
    repo.put("dev", "people", {"_id": "ada", "born": 1815, "city": "Marylebone"})
    repo.put("dev", "people", {"_id": "grace", "born": 1906})
    repo.delete("dev", "people", "alan")
    repo.put("main", "people", {"_id": "ada", "born": 1816, "city": "Paris"})


def test_merge_preview_lists_everything_and_apply_does_exactly_that(repo, client) -> None:
    _diverge(repo)
    preview = client.get(f"{API}/merges/preview", params={"source": "dev", "target": "main"}).json()
    assert preview["source_at"] == "dev@3" and preview["target_at"] == "main@3" and not preview["applicable"]
    # ada merges to main's own version (its conflict keeps ours), so only two would change
    assert sorted((d["stem"], d["change"]) for d in preview["documents"]) == [("alan", "deleted"), ("grace", "added")]
    assert preview["conflicts"] == [
        {"collection": "people", "name": "ada.json", "stem": "ada", "kind": "field", "path": "city", "base": "London", "ours": "Paris", "theirs": "Marylebone"}
    ]
    problem(client.post(f"{API}/merges", json={"preview": preview["preview"]}, headers=AUTH), 409, "conflict")
    assert repo.head("main") == 3  # nothing written

    theirs = client.get(f"{API}/merges/preview", params={"source": "dev", "target": "main", "strategy": "theirs"}).json()
    assert theirs["applicable"] and (theirs["added"], theirs["updated"], theirs["deleted"]) == (1, 1, 1)
    repo.put("dev", "people", {"_id": "late", "v": 1})  # the source moves on: the apply merges the previewed state
    applied = client.post(f"{API}/merges", json={"preview": theirs["preview"], "message": "review 7"}, headers=AUTH)
    assert applied.status_code == 200, applied.text
    out = applied.json()
    assert out["documents"] == theirs["documents"] and out["seq"] == repo.head("main")
    assert repo.get("main", "people", "ada").doc == {"_id": "ada", "born": 1816, "city": "Marylebone"}
    assert {e.stem for e in repo.entries("main", "people")} == {"ada", "grace"}  # not "late"
    assert next(iter(repo.log("main"))).author == "alice"  # the token's name


def test_merge_apply_refused_once_the_target_moved(repo, client) -> None:
    _diverge(repo)
    preview = client.get(f"{API}/merges/preview", params={"source": "dev", "target": "main", "strategy": "theirs"}).json()
    repo.put("main", "people", {"_id": "zed"})
    head = repo.head("main")
    problem(client.post(f"{API}/merges", json={"preview": preview["preview"]}, headers=AUTH), 409, "conflict")
    assert repo.head("main") == head and repo.get("main", "people", "ada").doc["city"] == "Paris"
    problem(client.post(f"{API}/merges", json={"preview": preview["preview"]}), 401, "unauthorized")
    problem(client.post(f"{API}/merges", json={"preview": "forged.token"}, headers=AUTH), 400, "invalid_preview")
    problem(client.get(f"{API}/merges/preview", params={"source": "dev", "target": "main", "strategy": "mine"}), 422, "invalid_request")
    problem(client.get(f"{API}/merges/preview", params={"source": "nope", "target": "main"}), 404, "not_found")


def test_merge_apply_races_a_writer(repo, client) -> None:
    """A writer lands between the apply's check and its appends: the merge stops
    uncommitted (409) and shows nothing."""
    from argonfs.store.engine import commits

    _diverge(repo)
    preview = client.get(f"{API}/merges/preview", params={"source": "dev", "target": "main", "strategy": "ours"}).json()
    real = commits.append
    raced = []

    def racing(versions, bid, records, guess=None, guard=None):  # type: ignore[no-untyped-def]
        if not raced and records and records[0].get("x"):
            raced.append(repo.put("main", "people", {"_id": "racer"}).seq)
        return real(versions, bid, records, guess, guard)

    commits.append = racing
    try:
        problem(client.post(f"{API}/merges", json={"preview": preview["preview"]}, headers=AUTH), 409, "conflict")
    finally:
        commits.append = real
    assert raced and {e.stem for e in repo.entries("main", "people")} == {"ada", "alan", "racer"}
    assert repo.get("main", "people", "ada").doc["city"] == "Paris"


def test_revert(repo, client) -> None:
    repo.put("main", "c", {"_id": 1, "v": 1})
    repo.put("main", "c", {"_id": 1, "v": 2})
    repo.put("main", "c", {"_id": 2})
    out = client.post(f"{API}/branches/main/revert", json={"to": "1", "message": "undo"}, headers=AUTH)
    assert out.status_code == 200, out.text
    assert sorted((d["stem"], d["change"]) for d in out.json()["documents"]) == [("1", "updated"), ("2", "deleted")]
    assert repo.get("main", "c", "1").doc == {"_id": 1, "v": 1}
    problem(client.post(f"{API}/branches/main/revert", json={"to": "1"}), 401, "unauthorized")
    problem(client.post(f"{API}/branches/nope/revert", json={"to": "1"}, headers=AUTH), 404, "not_found")
