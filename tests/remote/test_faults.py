"""How the cloud backends meet servers that refuse, fail or lose answers: refusals are
answered at once in one line naming the remote, temporary errors are retried by the
client's own machinery, and a create whose answer was lost still reports who created.

Emulators do not refuse credentials by default: S3's refusals come from moto with its
IAM checks switched on, Azure's from Azurite given a wrong key; GCS's and the scripted failures from tests/remote/httpfake.py
(a loopback HTTP server that counts what the client sent)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from argonfs.errors import RemoteUnavailable
from argonfs.remote.azure import AzureStore
from argonfs.remote.gcs import GcsStore
from argonfs.remote.objects import open_store
from argonfs.remote.s3 import S3Store
from tests.remote.fixtures import GCS_PROJECT, Remote, azure_env, s3_env
from tests.remote.httpfake import Answer, Request, fake_server, forward, json_error, xml_error

GS_URL = "gs://argonfs-faults/some/prefix"
S3_URL = "s3://argonfs-faults/some/prefix"
AZ_URL = "az://argonfs-faults/some/prefix"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def _script(*answers: Answer) -> Callable[[Request], Answer]:
    """The answers in turn, the last one for ever after."""
    queue = list(answers)

    def answer(_request: Request) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def _refusal(call: Callable[[], object], url: str) -> str:
    with pytest.raises(RemoteUnavailable) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"remote {url}: ")
    assert "\n" not in message
    return message


@pytest.fixture
def gcs_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point this process's GCS client at an endpoint."""

    def point(endpoint: str) -> None:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", GCS_PROJECT)

    return point


@pytest.fixture
def s3_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point this process's S3 client at an endpoint, with test credentials."""

    def point(endpoint: str) -> None:
        for name, value in s3_env(endpoint).items():
            monkeypatch.setenv(name, value)

    return point


@pytest.fixture
def azure_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point this process's Azure client at an endpoint, with Azurite's account and key."""

    def point(endpoint: str) -> None:
        for name, value in azure_env(endpoint).items():
            monkeypatch.setenv(name, value)

    return point


# GCS


def _object_requests(requests: list[Request]) -> list[Request]:
    """Requests about objects: google-cloud-storage (3.x) also fetches a bucket's metadata
    once, in a thread of its own, for its telemetry."""
    return [r for r in requests if "/o" in r.path.split("?")[0]]


def _gcs_script(*answers: Answer) -> Callable[[Request], Answer]:
    """``_script`` for object requests; the client's own bucket-metadata fetch is refused."""
    objects = _script(*answers)

    def answer(request: Request) -> Answer:
        return objects(request) if _object_requests([request]) else json_error(403, "no bucket metadata here")

    return answer


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (403, "403 tester does not have storage.objects.get access"),
        (401, "anonymous access refused: Anonymous credentials cannot be refreshed."),  # a real client refreshes its token first
    ],
)
def test_gcs_refusal_is_answered_at_once(gcs_at: Callable[[str], None], status: int, reason: str) -> None:
    with fake_server(_gcs_script(json_error(status, "tester does not have storage.objects.get access"))) as fake:
        gcs_at(fake.url)
        store = open_store(GS_URL)
        calls: list[Callable[[], object]] = [
            lambda: store.get("k"),
            lambda: store.get_range("k", 0, 10),
            lambda: store.put_if_absent("k", b"x"),
            lambda: list(store.list("")),
            lambda: store.delete("k"),
        ]
        for call in calls:
            before = len(_object_requests(fake.requests))
            assert _refusal(call, GS_URL) == f"remote {GS_URL}: permission denied ({reason})"
            assert len(_object_requests(fake.requests)) == before + 1  # not retried


def test_gcs_temporary_errors_are_retried(gcs_at: Callable[[str], None]) -> None:
    with fake_server(_gcs_script(json_error(503, "try later"), json_error(500, "oops"), Answer(200, b"payload"))) as fake:
        gcs_at(fake.url)
        assert open_store(GS_URL).get("objects/k") == b"payload"
    downloads = [(r.method, r.path.split("?")[0]) for r in _object_requests(fake.requests)]
    assert downloads == [("GET", "/download/storage/v1/b/argonfs-faults/o/some%2Fprefix%2Fobjects%2Fk")] * 3


def test_gcs_server_that_stays_down(gcs_at: Callable[[str], None]) -> None:
    with fake_server(_gcs_script(json_error(503, "down for maintenance"))) as fake:
        gcs_at(fake.url)
        message = _refusal(lambda: GcsStore(GS_URL, "argonfs-faults", "some/prefix", retry_timeout=2).get("k"), GS_URL)
    assert message == f"remote {GS_URL}: unreachable, still failing after retrying for 2s (503 down for maintenance)"
    assert len(_object_requests(fake.requests)) >= 2


def test_gcs_refused_connection(gcs_at: Callable[[str], None]) -> None:
    gcs_at(f"http://127.0.0.1:{_closed_port()}")
    message = _refusal(lambda: GcsStore(GS_URL, "argonfs-faults", "some/prefix", retry_timeout=1).put_if_absent("k", b"x"), GS_URL)
    assert message.startswith(f"remote {GS_URL}: unreachable, still failing after retrying for 1s (ConnectionError: ")


def _lose_first(upstream: str, method: str, *, deliver: bool) -> Callable[[Request], Answer]:
    """Forward to ``upstream``; the first ``method`` request gets a 503 instead of the real
    answer, after being delivered (the answer was lost) or not (it never arrived)."""
    lost: list[Request] = []

    def answer(request: Request) -> Answer:
        if request.method == method and not lost:
            lost.append(request)
            if deliver:
                forward(upstream, request)
            return Answer(503, b"", {})
        return forward(upstream, request)

    return answer


@pytest.mark.parametrize("kind", ["gcs", "s3", "azure"])
def test_create_whose_answer_was_lost(
    kind: str, make_remote: Callable[..., Remote], gcs_at: Callable[[str], None], s3_at: Callable[[str], None], azure_at: Callable[[str], None]
) -> None:
    remote = make_remote(kind)
    if kind == "azure":
        endpoint = request_endpoint = remote.env["AZURE_STORAGE_CONNECTION_STRING"].split("BlobEndpoint=", 1)[1].split(";")[0].rsplit("/", 1)[0]
    else:
        endpoint = request_endpoint = remote.env["STORAGE_EMULATOR_HOST" if kind == "gcs" else "AWS_ENDPOINT_URL"]
    point = {"gcs": gcs_at, "s3": s3_at, "azure": azure_at}[kind]
    write = "POST" if kind == "gcs" else "PUT"
    open_store(remote.url).put_if_absent("theirs", b"their bytes")

    # The create arrived, its answer did not: the retry meets our own object.
    with fake_server(_lose_first(request_endpoint, write, deliver=True)) as fake:
        point(fake.url)
        assert open_store(remote.url).put_if_absent("ours", b"our bytes") is True
    assert [r.method for r in fake.requests].count(write) == 2

    # The create never arrived, and the retry meets someone else's object.
    with fake_server(_lose_first(request_endpoint, write, deliver=False)) as fake:
        point(fake.url)
        assert open_store(remote.url).put_if_absent("theirs", b"our bytes") is False
    assert [r.method for r in fake.requests].count(write) == 2

    point(endpoint)
    store = open_store(remote.url)
    assert store.get("ours") == b"our bytes"
    assert store.get("theirs") == b"their bytes"


_NO_GOOGLE_CREDENTIALS = """
from argonfs.errors import RemoteUnavailable
from argonfs.remote.objects import open_store
try:
    open_store("gs://argonfs-faults/p").get("k")
except RemoteUnavailable as exc:
    print(exc)
"""


def test_gcs_without_credentials(tmp_path: Path) -> None:
    # In a child: google-auth reads its environment once, on import.  NO_GCE_CHECK keeps
    # it from asking a metadata server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "STORAGE_EMULATOR_HOST", "CLOUDSDK_", "GCE_"))}
    env.update(NO_GCE_CHECK="true", CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", _NO_GOOGLE_CREDENTIALS], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.startswith("remote gs://argonfs-faults/p: no Google Cloud credentials found"), result
    assert result.stdout.count("\n") == 1


# S3


@pytest.fixture
def s3_iam_enforced(s3_emulator: str, make_remote: Callable[..., Remote]) -> Iterator[tuple[Remote, str, str]]:
    """A bucket in moto with IAM checks on: every request must be signed with a known key and
    allowed by a policy.  Yields the remote and an access key of a user with no policy."""
    import boto3

    remote = make_remote("s3")

    def no_auth_actions(count: str) -> None:
        # (not sent as a form, which the server would parse into nothing)
        request = urllib.request.Request(f"{s3_emulator}/moto-api/reset-auth", data=count.encode(), headers={"Content-Type": "text/plain"}, method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    no_auth_actions("2")  # the two IAM calls below, then checks for everything
    try:
        iam = boto3.session.Session().client("iam")
        iam.create_user(UserName="no-policy")
        key = iam.create_access_key(UserName="no-policy")["AccessKey"]
        yield remote, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        no_auth_actions("inf")


def test_s3_refused_credentials(s3_iam_enforced: tuple[Remote, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    remote, key_id, secret = s3_iam_enforced
    cases = [
        ("testing", "testing", "InvalidAccessKeyId"),  # a key the server does not know
        (key_id, "not the secret", "SignatureDoesNotMatch"),
        (key_id, secret, "AccessDenied"),  # a known user the policy does not allow
    ]
    for access_key, secret_key, code in cases:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
        store = open_store(remote.url)
        for call in (store.get, functools.partial(store.put_if_absent, data=b"x"), lambda key, store=store: list(store.list(key))):
            message = _refusal(functools.partial(call, "k"), remote.url)
            assert message.startswith(f"remote {remote.url}: permission denied ({code}: "), message


def test_s3_refusal_is_answered_at_once(s3_at: Callable[[str], None]) -> None:
    with fake_server(_script(xml_error(403, "AccessDenied", "Access Denied"))) as fake:
        s3_at(fake.url)
        store = open_store(S3_URL)
        for call in (lambda: store.get("k"), lambda: store.put_if_absent("k", b"x"), lambda: list(store.list("")), lambda: store.delete("k")):
            before = len(fake.requests)
            assert _refusal(call, S3_URL) == f"remote {S3_URL}: permission denied (AccessDenied: Access Denied)"
            assert len(fake.requests) == before + 1  # not retried


def test_s3_temporary_errors_are_retried(s3_at: Callable[[str], None]) -> None:
    answers = _script(xml_error(500, "InternalError", "oops"), xml_error(503, "SlowDown", "slow down"), Answer(200, b"payload"))
    with fake_server(answers) as fake:
        s3_at(fake.url)
        assert open_store(S3_URL).get("objects/k") == b"payload"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/argonfs-faults/some/prefix/objects/k")] * 3


def test_s3_server_that_stays_down(s3_at: Callable[[str], None]) -> None:
    with fake_server(_script(xml_error(503, "ServiceUnavailable", "down for maintenance"))) as fake:
        s3_at(fake.url)
        message = _refusal(lambda: S3Store(S3_URL, "argonfs-faults", "some/prefix", max_attempts=3).get("k"), S3_URL)
    assert message == f"remote {S3_URL}: unavailable, still failing after 3 attempts (ServiceUnavailable: down for maintenance)"
    assert len(fake.requests) == 3


def test_s3_refused_connection(s3_at: Callable[[str], None]) -> None:
    s3_at(f"http://127.0.0.1:{_closed_port()}")
    message = _refusal(lambda: S3Store(S3_URL, "argonfs-faults", "some/prefix", max_attempts=2).put_if_absent("k", b"x"), S3_URL)
    assert message.startswith(f"remote {S3_URL}: unreachable (Could not connect to the endpoint URL")


@pytest.mark.parametrize(("exists", "created"), [(False, True), (True, False)])
def test_s3_conditional_write_conflict(s3_at: Callable[[str], None], exists: bool, created: bool) -> None:
    """409: another conditional write of the key was in flight.  If it finished, this one
    lost; if not, this one tries again."""
    puts: list[Request] = []

    def answer(request: Request) -> Answer:
        if request.method == "PUT":
            puts.append(request)
            if len(puts) == 1:
                return xml_error(409, "ConditionalRequestConflict", "A conflicting conditional operation is in progress")
            return Answer(200, b"", {"ETag": '"e"'})
        assert request.method == "HEAD"
        return Answer(200, b"", {"ETag": '"e"', "Content-Length": "1"}) if exists else Answer(404)

    with fake_server(answer) as fake:
        s3_at(fake.url)
        assert open_store(S3_URL).put_if_absent("label/slot", b"x") is created
    assert [r.method for r in fake.requests] == (["PUT", "HEAD"] if exists else ["PUT", "HEAD", "PUT"])
    assert all(r.headers.get("If-None-Match") == "*" for r in puts)


def test_s3_without_credentials(s3_at: Callable[[str], None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with fake_server(_script(Answer(200, b"should not be asked"))) as fake:
        s3_at(fake.url)
        for name in [k for k in os.environ if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"]:
            monkeypatch.delenv(name)
        # Nothing in files, no instance metadata: the standard chain comes up empty.
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        message = _refusal(lambda: open_store(S3_URL).get("k"), S3_URL)
    assert message.startswith(f"remote {S3_URL}: no AWS credentials found")
    assert fake.requests == []


# Azure


def _azure_error(status: int, code: str, message: str) -> Answer:
    """An Azure Storage error: its code in x-ms-error-code and in the XML body."""
    answer = xml_error(status, code, message)
    return Answer(status, answer.body, {**answer.headers, "x-ms-error-code": code})


def _azure_store(max_attempts: int = 3) -> AzureStore:
    return AzureStore(AZ_URL, max_attempts=max_attempts, backoff=0.01)


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (403, "AuthorizationPermissionMismatch", "permission denied (AuthorizationPermissionMismatch: not allowed)"),
        (403, "AuthenticationFailed", "permission denied (AuthenticationFailed: not allowed)"),
        (404, "ContainerNotFound", "no such container argonfs-faults"),
    ],
)
def test_azure_refusal_is_answered_at_once(azure_at: Callable[[str], None], status: int, code: str, reason: str) -> None:
    with fake_server(_script(_azure_error(status, code, "not allowed"))) as fake:
        azure_at(fake.url)
        store = _azure_store(max_attempts=6)
        calls: list[Callable[[], object]] = [
            lambda: store.get("k"),
            lambda: store.get_range("k", 0, 10),
            lambda: store.put_if_absent("k", b"x"),
            lambda: list(store.list("")),
            lambda: store.delete("k"),
        ]
        for call in calls:
            before = len(fake.requests)
            assert _refusal(call, AZ_URL) == f"remote {AZ_URL}: {reason}"
            assert len(fake.requests) == before + 1  # not retried


def test_azure_missing_blob_is_not_found(azure_at: Callable[[str], None]) -> None:
    from argonfs.errors import NotFound

    with fake_server(_script(_azure_error(404, "BlobNotFound", "no blob"))) as fake:
        azure_at(fake.url)
        with pytest.raises(NotFound):
            _azure_store().get("k")
    assert len(fake.requests) == 1


def test_azure_temporary_errors_are_retried(azure_at: Callable[[str], None]) -> None:
    answers = _script(
        _azure_error(503, "ServerBusy", "busy"),
        _azure_error(500, "InternalError", "oops"),
        Answer(200, b"payload", {"Content-Length": "7", "x-ms-blob-type": "BlockBlob", "Content-Range": "bytes 0-6/7"}),
    )
    with fake_server(answers) as fake:
        azure_at(fake.url)
        assert _azure_store(max_attempts=4).get("objects/k") == b"payload"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/devstoreaccount1/argonfs-faults/some/prefix/objects/k")] * 3


def test_azure_server_that_stays_down(azure_at: Callable[[str], None]) -> None:
    with fake_server(_script(_azure_error(503, "ServerBusy", "down for maintenance"))) as fake:
        azure_at(fake.url)
        message = _refusal(lambda: _azure_store(max_attempts=3).get("k"), AZ_URL)
    assert message == f"remote {AZ_URL}: unavailable, still failing after 3 attempts (ServerBusy: down for maintenance)"
    assert len(fake.requests) == 3


def test_azure_refused_connection(azure_at: Callable[[str], None]) -> None:
    azure_at(f"http://127.0.0.1:{_closed_port()}")
    message = _refusal(lambda: _azure_store(max_attempts=2).put_if_absent("k", b"x"), AZ_URL)
    assert message.startswith(f"remote {AZ_URL}: unreachable, still failing after 2 attempts ("), message


@pytest.mark.parametrize(("ours", "created"), [(True, True), (False, False)])
def test_azure_create_if_absent_conflict(azure_at: Callable[[str], None], ours: bool, created: bool) -> None:
    """409 BlobAlreadyExists on a retry after a lost answer: ours (created) if the blob
    holds our bytes, else someone else's."""
    puts: list[Request] = []

    def answer(request: Request) -> Answer:
        if request.method == "PUT":
            puts.append(request)
            if len(puts) == 1:
                return _azure_error(503, "ServerBusy", "busy")
            return _azure_error(409, "BlobAlreadyExists", "The specified blob already exists.")
        assert request.method == "GET"
        body = b"x" if ours else b"theirs"
        size = len(body)
        return Answer(206, body, {"Content-Length": str(size), "x-ms-blob-type": "BlockBlob", "Content-Range": f"bytes 0-{size - 1}/{size}"})

    with fake_server(answer) as fake:
        azure_at(fake.url)
        assert _azure_store().put_if_absent("label/slot", b"x") is created
    assert [r.method for r in fake.requests] == ["PUT", "PUT", "GET"]
    assert all(r.headers.get("If-None-Match") == "*" for r in puts)


def test_azure_first_create_conflict_is_someone_elses(azure_at: Callable[[str], None]) -> None:
    with fake_server(_script(_azure_error(409, "BlobAlreadyExists", "The specified blob already exists."))) as fake:
        azure_at(fake.url)
        assert _azure_store().put_if_absent("label/slot", b"x") is False
    assert [r.method for r in fake.requests] == ["PUT"]


def test_azure_refused_key(azure_emulator: str, make_remote: Callable[..., Remote], monkeypatch: pytest.MonkeyPatch) -> None:
    remote = make_remote("azure")
    bad = remote.env["AZURE_STORAGE_CONNECTION_STRING"].replace("AccountKey=", "AccountKey=AAAA")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", bad)
    store = open_store(remote.url)
    message = _refusal(lambda: store.get("k"), remote.url)
    assert message.startswith(f"remote {remote.url}: permission denied (AuthorizationFailure: "), message


def test_azure_without_account(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("AZURE_")]:
        monkeypatch.delenv(name)
    message = _refusal(lambda: open_store(AZ_URL).get("k"), AZ_URL)
    assert message.startswith(f"remote {AZ_URL}: no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING")


def test_fake_server_counts_what_it_answers() -> None:
    # The fault tests above count requests: the counting itself must be right.
    with fake_server(_script(Answer(200, json.dumps({"ok": True}).encode()))) as fake:
        for _ in range(3):
            with urllib.request.urlopen(f"{fake.url}/x?y=1", timeout=5) as response:
                assert json.load(response) == {"ok": True}
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/x?y=1")] * 3
