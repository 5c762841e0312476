"""Shared fixtures.

Store and CLI tests talk to a real MongoDB wire-protocol server: an in-process
SecantusDB started once per session, or a real mongod when ARGONFS_TEST_MONGO_URI is
set.  Every test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest

# The suite's `argonfs` subprocesses run every command in-process: no warm command
# process (docs/cli.md, "Warm commands") is started for the temporary data directories
# the tests make.  tests/cli/test_warm.py turns it on for its own commands.
os.environ["ARGONFS_WARM"] = "0"


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    uri = os.environ.get("ARGONFS_TEST_MONGO_URI")
    if uri:
        yield uri
        return
    from secantus import SecantusDBServer

    with tempfile.TemporaryDirectory(prefix="argonfs-test-db-") as path:
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=path)
        server.start()
        try:
            yield server.uri
        finally:
            server.stop()


@pytest.fixture
def repo_name(mongo_uri: str) -> Iterator[str]:
    from argonfs.store.db.mongo import client

    name = f"argonfs_test_{uuid.uuid4().hex[:12]}"
    yield name
    client(mongo_uri).drop_database(name)


@pytest.fixture
def repo(mongo_uri: str, repo_name: str):
    from argonfs.store import Repository

    r = Repository.open(mongo_uri, repo_name, author="tester")
    r.init()
    return r


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; each is killed and reaped afterwards."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
