"""The console's reviewing pages over the ASGI app: diff, merge (preview and apply
through the form, with the session and the CSRF field), log, bundles and labels; the
session cookie and cross-site refusals; the read log of API reads."""

from __future__ import annotations

import re

from argonfs.console.auth import SESSION, csrf_value, session_value
from tests.console.helpers import API, AUTH, TOKEN, make_client, problem


def login(client) -> None:
    answer = client.post("/login", data={"token": TOKEN.secret, "next": "/merge"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/merge"
    cookie = answer.headers["set-cookie"]
    assert f"{SESSION}={session_value(TOKEN)}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    client.cookies.set(SESSION, session_value(TOKEN))


def test_diff_page_shows_changed_fields(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "city": "London", "born": 1815})
    repo.create_branch("dev")
    repo.put("dev", "people", {"_id": "ada", "city": "Paris <b>", "born": 1815})
    repo.put("dev", "people", {"_id": "grace"})
    page = client.get("/diff", params={"from": "main", "to": "dev"})
    assert page.status_code == 200
    html = page.text
    assert 'class="modified"' in html and 'class="added"' in html and "main@1 → dev@2" in html
    assert '<td class="path">city</td>' in html and '<td class="old">&#34;London&#34;</td>' in html
    assert "Paris &lt;b&gt;" in html and "<b>" not in html.split("<main>")[1].replace("<b>Merging", "")
    assert "No differences" in client.get("/diff", params={"from": "main", "to": "main"}).text
    assert client.get("/diff").status_code == 200  # the empty form
    assert client.get("/diff", params={"from": "main", "to": "nope"}).status_code == 404


def test_merge_page_preview_conflicts_and_apply(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "city": "London"})
    repo.create_branch("dev")
    repo.put("dev", "people", {"_id": "ada", "city": "Marylebone"})
    repo.put("dev", "people", {"_id": "grace"})
    repo.put("main", "people", {"_id": "ada", "city": "Paris"})
    page = client.get("/merge", params={"source": "dev", "target": "main"}).text
    assert 'id="conflicts"' in page and 'class="side ours">&#34;Paris&#34;' in page and 'class="side theirs">&#34;Marylebone&#34;' in page
    assert 'id="blocked"' in page and 'id="apply-form"' not in page
    page = client.get("/merge", params={"source": "dev", "target": "main", "strategy": "theirs"}).text
    assert "Log in</a> to apply" in page  # not logged in: no form
    login(client)
    page = client.get("/merge", params={"source": "dev", "target": "main", "strategy": "theirs"}).text
    preview = re.search(r'name="preview" value="([^"]+)"', page).group(1)
    assert re.search(r'name="csrf" value="([^"]+)"', page).group(1) == csrf_value(TOKEN)

    refused = client.post("/merge", data={"preview": preview, "csrf": "forged"})
    assert refused.status_code == 403 and "cross_site" in refused.text and repo.head("main") == 2
    other_site = client.post("/merge", data={"preview": preview, "csrf": csrf_value(TOKEN)}, headers={"Origin": "http://evil.example"})
    assert other_site.status_code == 403 and repo.head("main") == 2
    done = client.post("/merge", data={"preview": preview, "csrf": csrf_value(TOKEN), "message": "from the page"})
    assert done.status_code == 200 and "Merged dev into main at main@" in done.text
    assert repo.get("main", "people", "ada").doc["city"] == "Marylebone"
    assert next(iter(repo.log("main"))).author == TOKEN.name
    again = client.post("/merge", data={"preview": preview, "csrf": csrf_value(TOKEN)})
    assert again.status_code == 409 and "moved since the merge was previewed" in again.text


def test_a_form_post_needs_the_session(repo, client) -> None:
    repo.put("main", "c", {"_id": 1})
    answer = client.post("/merge", data={"preview": "x", "csrf": csrf_value(TOKEN)})
    assert answer.status_code == 401
    client.cookies.set(SESSION, "stale")
    assert client.post("/merge", data={"preview": "x", "csrf": csrf_value(TOKEN)}).status_code == 401
    wrong = client.post("/login", data={"token": "guess", "next": "/"})
    assert wrong.status_code == 401 and 'id="wrong"' in wrong.text
    elsewhere = client.post("/login", data={"token": TOKEN.secret, "next": "//evil.example/"}, follow_redirects=False)
    assert elsewhere.headers["location"] == "/"
    # the cookie never writes through the API: that takes the Authorization header
    client.cookies.set(SESSION, session_value(TOKEN))
    problem(client.put(f"{API}/refs/main/collections/c/documents/2", json={"v": 1}), 401, "unauthorized")


def test_the_session_opens_a_server_off_loopback(repo) -> None:
    client = make_client(repo, reads_need_token=True, host="10.1.2.3")
    assert client.get("/").status_code == 401
    login(client)
    assert client.get("/").status_code == 200 and TOKEN.name in client.get("/").text
    assert client.get(f"{API}/branches").status_code == 200


def test_log_bundles_and_labels_pages(repo, client) -> None:
    for i in range(3):
        repo.with_author("bob" if i == 1 else "ann").put("main", "people", {"_id": i})
    one = repo.create_bundle("main", "first", label="prod")
    repo.put("main", "people", {"_id": 9})
    two = repo.create_bundle("main", "second")
    repo.set_label("prod", two.id)
    log = client.get("/refs/main/log", params={"author": "bob"}).text
    assert log.count('class="author">bob<') == 1 and 'class="author">ann<' not in log
    assert "1.json" in log
    assert client.get("/refs/main/log", params={"since": "not a time"}).status_code == 400
    bundles = client.get("/bundles").text
    assert one.id in bundles and two.id in bundles and 'href="/labels/prod"' in bundles
    assert 'href="/labels/prod"' in client.get("/labels").text
    label = client.get("/labels/prod").text
    assert f'Names <a class="bundle" href="/refs/{two.id}">' in label and f"from={one.id}&amp;to={two.id}" in label


def test_api_reads_go_to_the_read_log(repo) -> None:
    repo.put("main", "people", {"_id": "ada"})
    client = make_client(repo, read_log=True)
    assert client.get(f"{API}/refs/main/collections/people/documents/ada", headers=AUTH).status_code == 200
    assert client.get(f"{API}/refs/main/collections/people/documents", params={"bodies": "true"}).status_code == 200
    assert client.get("/refs/main/collections/people/documents/ada.json").status_code == 200
    rows = repo.read_log("main")
    assert [(r["user"], r["collection"], r["id"]) for r in rows] == [("anonymous@testclient", "people", "ada.json")] * 2 + [("alice", "people", "ada.json")]
    make_client(repo).get(f"{API}/refs/main/collections/people/documents/ada")  # without --read-log: nothing kept
    assert len(repo.read_log("main")) == 3
