"""The remote fixtures (tests/remote/fixtures.py), for the tests of this directory."""

from tests.remote.fixtures import *  # noqa: F403
