"""Every error status in the one shape {error, message, detail}, never a traceback;
the statuses come from one table (argonfs/console/statuses.py)."""

from __future__ import annotations

import socket

import pytest

from argonfs import errors
from argonfs.console.statuses import STATUSES, status_of
from argonfs.store import Repository
from tests.console.helpers import API, AUTH, make_client, problem

DOC = f"{API}/refs/main/collections/people/documents/ada"


def test_every_error_class_has_a_status() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ArgonError)]
    assert set(classes) == set(STATUSES)
    assert status_of(errors.DocumentTooLarge("x")) == (413, "document_too_large")
    assert status_of(errors.Protected("x")) == (403, "protected")

    class Later(errors.Conflict):
        pass

    assert status_of(Later("x")) == (409, "conflict")


def test_not_found_bad_input_and_http_errors(repo, client) -> None:
    problem(client.get(f"{API}/refs/nope/collections"), 404, "not_found")
    problem(client.get(f"{API}/nothing/here"), 404, "not_found")
    problem(client.patch(f"{API}/branches"), 405, "method_not_allowed")
    problem(client.get(f"{API}/refs/main@x/collections"), 400, "invalid_name")
    problem(client.get(f"{API}/refs/main@99/collections"), 404, "not_found")
    body = problem(client.get(DOC, params={"slot": 0}), 422, "invalid_request")
    assert body["detail"][0]["loc"] == ["query", "slot"] and "slot" in body["message"]
    problem(client.get(f"{API}/bundles", params={"limit": "many"}), 422, "invalid_request")


@pytest.mark.deadline(60)
def test_a_document_too_large(repo, client) -> None:
    big = b'{"x": "' + b"a" * (17 * 1024 * 1024) + b'"}'
    problem(client.put(DOC, content=big, headers=AUTH), 413, "document_too_large")
    problem(client.put(DOC, content=b"x" * (64 * 1024 * 1024 + 1), headers=AUTH), 413, "document_too_large")


def test_a_server_that_cannot_be_reached_is_503(monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("ARGONFS_MONGO_TIMEOUT_MS", "300")
    down = Repository.open(f"mongodb://127.0.0.1:{port}/?appname=down", "x", author="t")
    client = make_client(down)
    body = problem(client.get(f"{API}/branches"), 503, "store_unavailable")
    assert str(port) in body["message"]
    problem(client.put(DOC, content=b"{}", headers=AUTH), 503, "store_unavailable")


def test_a_bug_is_500_without_a_traceback(repo, client, monkeypatch, caplog) -> None:
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(repo, "list_branches", broken)
    body = problem(client.get(f"{API}/branches"), 500, "internal")
    assert "secret" not in body["message"] and body["detail"] is None
    assert "secret internals" in caplog.text  # the log has it


def test_pages_answer_errors_as_html(repo, client) -> None:
    r = client.get("/refs/nope")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "unknown ref &#39;nope&#39;" in r.text and "Traceback" not in r.text
