"""A MongoDB that is down or refuses authentication gives a clear error."""

from __future__ import annotations

import socket

import pytest

from argonfs.errors import StoreUnavailable
from argonfs.store import Repository


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(monkeypatch) -> None:
    monkeypatch.setenv("ARGONFS_MONGO_TIMEOUT_MS", "500")
    repo = Repository.open(f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true", "x")
    with pytest.raises(StoreUnavailable, match=r"cannot reach MongoDB at mongodb://127.0.0.1"):
        repo.init()
    with pytest.raises(StoreUnavailable):
        list(repo.entries("main", "c"))


def test_authentication_refused(tmp_path) -> None:
    """Needs a server with authentication on, so it starts its own SecantusDB."""
    from secantus import SecantusDBServer

    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(tmp_path), require_auth=True)
    server.start()
    try:
        host, port = server.address
        repo = Repository.open(f"mongodb://nobody:wrong@{host}:{port}/?authSource=admin", "x")
        with pytest.raises(StoreUnavailable, match="refused authentication"):
            repo.init()
    finally:
        server.stop()
