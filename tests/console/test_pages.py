"""The console's pages, server-rendered: branches -> collections -> a page of documents
-> a document and its history, with every link followed as a browser would."""

from __future__ import annotations

import re
from html import unescape

import pytest


def links(html: str, css_class: str) -> list[tuple[str, str]]:
    """(href, text) of the links of a class, unescaped as a browser reads them."""
    return [(unescape(h), unescape(t)) for h, t in re.findall(rf'<a class="{css_class}" href="([^"]*)">([^<]*)</a>', html)]


def test_branches_page(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada"})
    repo.create_branch("exp")
    repo.with_author("bob").put("exp", "people", {"_id": "alan"})
    html = client.get("/").text
    assert links(html, "branch") == [("/refs/exp", "exp"), ("/refs/main", "main")]
    row = html[html.index('href="/refs/exp"') :].split("</tr>")[0]
    assert "bob" in row and "main@1" in row


def test_walk_from_branches_to_a_document_and_an_older_version(repo, client) -> None:
    repo.put("main", "people", {"_id": "ada", "name": "Ada"})
    repo.put("main", "people", {"_id": "ada", "name": "Ada Lovelace"})
    href = dict((t, h) for h, t in links(client.get("/").text, "branch"))["main"]
    page = client.get(href)
    assert page.status_code == 200 and "(main@2)" in page.text
    href = links(page.text, "collection")[0][0]
    page = client.get(href)
    assert [t for _, t in links(page.text, "document")] == ["ada.json"]
    page = client.get(links(page.text, "document")[0][0])
    assert "&#34;Ada Lovelace&#34;" in page.text or "&quot;Ada Lovelace&quot;" in page.text
    versions = links(page.text, "version")
    assert [t for _, t in versions] == ["slot 2", "slot 1"]
    old = client.get(versions[1][0])
    assert old.status_code == 200 and "Lovelace" not in old.text.split('<pre id="json">')[1].split("</pre>")[0]


@pytest.mark.deadline(180)
def test_documents_page_pages_with_a_cursor(repo, client) -> None:
    repo.import_documents("main", "many", ({"_id": i} for i in range(250)))
    html = client.get("/refs/main/collections/many").text
    shown, pages = [], 0
    while True:
        pages += 1
        shown += [t for _, t in links(html, "document")]
        nxt = re.search(r'<a id="next" href="([^"]*)"', html)
        if not nxt:
            break
        html = client.get("/refs/main/collections/many" + unescape(nxt.group(1))).text
        assert 'id="first"' in html
    assert pages == 3 and shown == [f"{i}.json" for i in sorted(range(250), key=str)]


def test_names_are_escaped_and_quoted(repo, client) -> None:
    repo.create_branch("a&b<c>")
    # (a name with a % in it goes through a real server: tests/console/test_serve_process.py;
    # Starlette's TestClient decodes a path twice)
    repo.put("a&b<c>", "c 1", {"_id": "x?<z>", "v": "<script>alert(1)</script>"})
    html = client.get("/").text
    assert "<c>" not in html and links(html, "branch")[0] == ("/refs/a%26b%3Cc%3E", "a&b<c>")
    html = client.get("/refs/a%26b%3Cc%3E").text
    href = links(html, "collection")[0][0]
    assert href == "/refs/a%26b%3Cc%3E/collections/c%201"
    html = client.get(href).text
    doc_href, name = links(html, "document")[0]
    assert (doc_href, name) == ("/refs/a%26b%3Cc%3E/collections/c%201/documents/x%3F%3Cz%3E", "x?<z>.json")
    page = client.get(doc_href)
    assert page.status_code == 200 and "<script>" not in page.text and "&lt;script&gt;" in page.text
