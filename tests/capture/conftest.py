"""Fixtures for capture tests: a second SecantusDB server as the application's database
(the store is the session's server, or ARGONFS_TEST_MONGO_URI), a database of its own
per test, and capture processes that are always killed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymongo
import pytest


@pytest.fixture(scope="session")
def source_server() -> Iterator[Any]:
    from secantus import SecantusDBServer

    with tempfile.TemporaryDirectory(prefix="argonfs-test-source-") as path:
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=path)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Source:
    """The application's database: ``uri`` names it (mongodb://host/db)."""

    client: pymongo.MongoClient
    name: str
    base: str
    started: list[subprocess.Popen] = field(default_factory=list)

    @property
    def db(self) -> Any:
        return self.client[self.name]

    @property
    def uri(self) -> str:
        return f"{self.base}/{self.name}"

    def state(self, collections: list[str] | None = None) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every document of the database, by collection and _id."""
        names = collections or sorted(n for n in self.db.list_collection_names() if not n.startswith("system."))
        return {n: {d["_id"]: d for d in self.db[n].find()} for n in names}


@pytest.fixture
def source(source_server: Any) -> Iterator[Source]:
    client: pymongo.MongoClient = pymongo.MongoClient(source_server.uri)
    src = Source(client, f"app_{uuid.uuid4().hex[:10]}", source_server.uri.rstrip("/"))
    try:
        yield src
    finally:
        client.drop_database(src.name)
        client.close()


def branch_state(repo: Any, ref: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every document of a ref, by collection and _id."""
    return {c: {d.doc["_id"]: d.doc for d in repo.documents(ref, c)} for c in repo.collections(ref)}


def capture_once(repo: Any, source_uri: str, branch: str, **options: Any) -> list[dict[str, Any]]:
    """Run a capture in this process until caught up; return its reports."""
    from argonfs.capture import Capture, Options, parse_source

    reports: list[dict[str, Any]] = []
    only = options.pop("only", ())
    deadline = options.pop("deadline", 60.0)
    job = Capture(repo, parse_source(source_uri, only), branch, Options(once=True, **options), reports.append)
    late: list[bool] = []
    watchdog = threading.Timer(deadline, lambda: (late.append(True), job.stop()))
    watchdog.start()
    try:
        job.run()
    finally:
        watchdog.cancel()
    assert not late, f"the capture did not catch up within {deadline} s"
    return reports


@pytest.fixture
def spawn(mongo_uri: str, repo_name: str, procs: list[subprocess.Popen]) -> Callable[..., subprocess.Popen]:
    """Start ``argonfs capture ...`` (or another argonfs command) as a process of its own
    on the test's repository; every process is killed and reaped afterwards."""

    def start(*args: str, **kwargs: Any) -> subprocess.Popen:
        env = {**os.environ, "ARGONFS_MONGO_URI": mongo_uri, "ARGONFS_REPO": repo_name}
        p = subprocess.Popen([sys.executable, "-m", "argonfs", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        procs.append(p)
        return p

    return start
