"""Fixtures of the console tests: the ASGI app over a real repository (the ``repo``
fixture: SecantusDB over TCP, or ARGONFS_TEST_MONGO_URI) and a deadline on every test.

Every test runs under a deadline (``DEADLINE`` seconds, or ``@pytest.mark.deadline(s)``):
SIGALRM fails it, so a request that hangs fails its test instead of hanging the suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.console.helpers import make_client
from tests.console.processes import env, serve  # noqa: F401  (real `argonfs serve` processes)

DEADLINE = 120.0


@pytest.fixture(autouse=True)
def deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("deadline")
    seconds = float(marker.args[0]) if marker else DEADLINE

    def expire(signum: int, frame: Any) -> None:
        pytest.fail(f"the test did not finish within its deadline of {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def client(repo: Any) -> TestClient:
    """The app as ``argonfs serve`` runs it on loopback."""
    return make_client(repo)
