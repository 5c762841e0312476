"""The token: made once, kept 0600, printed by `argonfs serve token`; every write needs
it, every request does off loopback, and a loopback server answers loopback names only."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner

from argonfs.cli import main
from argonfs.console import auth
from tests.console.helpers import API, AUTH, TOKEN, make_client, problem

DOC = f"{API}/refs/main/collections/people/documents/ada"


def test_the_token_is_made_once_and_kept_private(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ARGONFS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ARGONFS_AUTHOR", "dora")
    assert auth.load_token() is None
    token = auth.ensure_token()
    assert token.name == "dora" and len(token.secret) >= 40
    path = auth.token_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert auth.ensure_token() == token == auth.load_token()
    out = CliRunner().invoke(main, ["serve", "token"])
    assert out.exit_code == 0 and out.stdout.strip() == token.secret
    path.write_text("{not json")
    with pytest.raises(auth.ArgonError, match="not a token file"):
        auth.load_token()


def test_serve_token_makes_one_before_the_first_start(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ARGONFS_HOME", str(tmp_path / "home"))
    out = CliRunner().invoke(main, ["serve", "token"])
    assert out.exit_code == 0 and out.stdout.strip() == auth.load_token().secret


def test_writes_need_the_token(repo, client) -> None:
    for call in (lambda h: client.put(DOC, content=b"{}", headers=h), lambda h: client.delete(DOC, headers=h)):
        r = call({})
        problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        problem(call({"Authorization": "Bearer wrong"}), 401, "unauthorized")
        problem(call({"Authorization": f"Basic {TOKEN.secret}"}), 401, "unauthorized")
    assert client.put(DOC, content=b"{}", headers=AUTH).status_code == 200
    assert client.delete(DOC, headers=AUTH).status_code == 200


def test_on_loopback_reads_are_open_but_a_wrong_token_is_refused(repo, client) -> None:
    assert client.get(f"{API}/branches").status_code == 200
    assert client.get("/").status_code == 200
    problem(client.get(f"{API}/branches", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")


def test_off_loopback_every_request_needs_the_token(repo) -> None:
    client = make_client(repo, reads_need_token=True, host="10.1.2.3")
    for path in (f"{API}/branches", f"{API}/refs/main/collections", f"{API}/openapi.json", "/"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    problem(client.get(f"{API}/branches"), 401, "unauthorized")


def test_a_loopback_server_refuses_other_host_names(repo) -> None:
    for host in ("evil.example", "10.0.0.1"):
        problem(make_client(repo, host=host).get(f"{API}/branches"), 403, "forbidden_host")
    for host in ("localhost:8470", "127.0.0.1", "[::1]:8470"):
        assert make_client(repo, host=host).get(f"{API}/branches").status_code == 200, host


def test_which_addresses_are_loopback() -> None:
    assert all(auth.is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(auth.is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", ""))
    assert auth.host_of("[::1]:8470") == "[::1]" and auth.host_of("localhost:1") == "localhost" and auth.host_of("a") == "a"
