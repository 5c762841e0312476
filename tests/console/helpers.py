"""Helpers of the console tests: the token they use and the one error shape."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from argonfs.console.app import create_app
from argonfs.console.auth import LOOPBACK_HOSTS, Policy, Token

TOKEN = Token("alice", "console-test-token")
AUTH = {"Authorization": f"Bearer {TOKEN.secret}"}
API = "/api/v1"


def make_client(repo: Any, *, reads_need_token: bool = False, host: str = "127.0.0.1", read_log: bool = False) -> TestClient:
    """A client of the app serving ``repo`` (a bug answers 500 rather than raising)."""
    policy = Policy(TOKEN, reads_need_token=reads_need_token, hosts=None if reads_need_token else LOOPBACK_HOSTS)
    return TestClient(create_app(repo, policy, read_log=read_log), base_url=f"http://{host}", raise_server_exceptions=False)


def problem(response: Any, status: int, error: str) -> dict[str, Any]:
    """Assert the one error shape, status and name; return the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "detail"} and body["error"] == error, body
    assert "Traceback" not in response.text and body["message"]
    return body
