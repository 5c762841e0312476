"""The ObjectStore contract, the same tests over every backend: a local directory,
GCS (fake-gcs-server), S3 (moto) and Azure Blob Storage (Azurite), each in a fresh bucket under a prefix."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from argonfs.errors import NotFound, RemoteUnavailable
from argonfs.remote.objects import open_store
from tests.remote.fixtures import SCHEMES, Remote

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable


def test_put_if_absent_creates_then_refuses(remote_url: str) -> None:
    store = open_store(remote_url)
    assert store.put_if_absent("objects/ab/cdef", b"first") is True
    assert store.put_if_absent("objects/ab/cdef", b"second") is False
    assert store.get("objects/ab/cdef") == b"first"
    assert store.put_if_absent("empty", b"") is True
    assert store.put_if_absent("empty", b"not empty") is False
    assert store.get("empty") == b""


def test_large_object_is_created_once(remote_url: str) -> None:
    # Past google-cloud-storage's 8 MiB multipart limit: a resumable upload, same precondition.
    store = open_store(remote_url)
    data = DATA * (9 * 1024)
    assert store.put_if_absent("big", data) is True
    assert store.put_if_absent("big", b"small") is False
    assert store.get("big") == data
    assert store.get_range("big", len(data) - 10, 100) == data[-10:]
    assert [(o.key, o.size) for o in store.list("big")] == [("big", len(data))]


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        pytest.param(0, 10, DATA[:10], id="start"),
        pytest.param(500, 100, DATA[500:600], id="middle"),
        pytest.param(0, 1024, DATA, id="whole"),
        pytest.param(1000, 100, DATA[1000:], id="beyond-end"),  # what is there
        pytest.param(1023, 1, DATA[1023:], id="last-byte"),
        pytest.param(1024, 5, b"", id="at-end"),
        pytest.param(5000, 5, b"", id="after-end"),
        pytest.param(10, 0, b"", id="zero-length"),
    ],
)
def test_get_range(remote_url: str, start: int, length: int, expected: bytes) -> None:
    store = open_store(remote_url)
    store.put_if_absent("blob", DATA)
    assert store.get_range("blob", start, length) == expected


def test_get_and_ranges_of_an_empty_object(remote_url: str) -> None:
    store = open_store(remote_url)
    store.put_if_absent("empty", b"")
    assert store.get("empty") == b""
    assert store.get_range("empty", 0, 10) == b""
    assert store.get_range("empty", 0, 0) == b""


def test_list_by_prefix_in_key_order(remote: Remote) -> None:
    store = open_store(remote.url)
    before = time.time()
    contents = {"c": b"ccc", "a/2": b"22", "ab": b"x", "a/10": b"1010", "a/1": b"1", "b/deep/er/key": b"deep"}
    for key, data in contents.items():
        assert store.put_if_absent(key, data)
    listed = list(store.list("a/"))
    assert [(o.key, o.size) for o in listed] == [("a/1", 1), ("a/10", 4), ("a/2", 2)]
    assert [o.key for o in store.list("a")] == ["a/1", "a/10", "a/2", "ab"]
    assert [o.key for o in store.list("b/deep/")] == ["b/deep/er/key"]
    assert [(o.key, o.size) for o in store.list("")] == sorted((k, len(v)) for k, v in contents.items())
    assert list(store.list("nothing/")) == []
    assert list(store.list("a/3")) == []
    for info in listed:  # written just now (some servers keep whole seconds)
        assert before - 2 <= info.mtime <= time.time() + 2


def test_list_keeps_to_the_remote_prefix(remote: Remote) -> None:
    store = open_store(remote.url)
    bucket = open_store(remote.bucket_url)
    # Outside the prefix: elsewhere in the bucket, and a sibling that shares its spelling.
    assert bucket.put_if_absent("elsewhere/a", b"no")
    assert bucket.put_if_absent("some/prefixed/a", b"no")
    assert bucket.put_if_absent("some/prefix-other", b"no")
    assert store.put_if_absent("a", b"yes")
    assert [o.key for o in store.list("")] == ["a"]
    assert [o.key for o in store.list("a")] == ["a"]
    # The remote's keys live under its prefix in the bucket.
    assert bucket.get("some/prefix/a") == b"yes"
    assert [o.key for o in bucket.list("some/")] == ["some/prefix-other", "some/prefix/a", "some/prefixed/a"]


def test_delete(remote_url: str) -> None:
    store = open_store(remote_url)
    store.put_if_absent("k/1", b"one")
    store.put_if_absent("k/2", b"two")
    store.delete("k/1")
    with pytest.raises(NotFound):
        store.get("k/1")
    assert [o.key for o in store.list("k/")] == ["k/2"]
    store.delete("k/1")  # already gone: fine
    store.delete("never/was")
    assert store.put_if_absent("k/1", b"again") is True
    assert store.get("k/1") == b"again"


def test_missing_key_is_not_found(remote_url: str) -> None:
    store = open_store(remote_url)
    store.put_if_absent("present", b"x")
    for read in (lambda: store.get("absent"), lambda: store.get_range("absent", 0, 10), lambda: store.get_range("absent", 0, 0)):
        with pytest.raises(NotFound) as info:
            read()
        assert str(info.value) == f"remote {remote_url}: no object absent"


def test_missing_bucket_is_unavailable(remote: Remote, tmp_path: Path) -> None:
    missing = f"argonfs-missing-{uuid.uuid4().hex[:12]}"
    if remote.kind == "local":
        url = (tmp_path / missing / "remote").as_uri()
    else:
        url = f"{SCHEMES[remote.kind]}://{missing}/some/prefix"
    store = open_store(url)
    calls = [lambda: store.put_if_absent("k", b"x"), lambda: store.get("k"), lambda: store.get_range("k", 0, 4), lambda: list(store.list(""))]
    if remote.kind != "local":  # a local remote's delete does not look at its directory
        calls.append(lambda: store.delete("k"))
    for call in calls:
        with pytest.raises(RemoteUnavailable) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"remote {url}: no such ")
        assert missing in message
        assert "\n" not in message


def test_threads_racing_to_create_one_key(remote_url: str) -> None:
    store = open_store(remote_url)
    for round_ in range(3):
        key = f"label/slot-{round_}"
        barrier = threading.Barrier(6)
        results: dict[int, bool] = {}

        def create(i: int, key: str = key, barrier: threading.Barrier = barrier, results: dict[int, bool] = results) -> None:
            barrier.wait()
            results[i] = store.put_if_absent(key, f"writer {i}".encode())

        threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [i for i, won in results.items() if won]
        assert len(results) == 6
        assert len(winners) == 1, results
        assert store.get(key) == f"writer {winners[0]}".encode()


_RACER = """
import os, sys, time
from argonfs.errors import NotFound
from argonfs.remote.objects import open_store
url, key, data, go = sys.argv[1:]
store = open_store(url)
try:
    store.get(key)  # the client made and connected before the start
except NotFound:
    pass
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
print(store.put_if_absent(key, data.encode()), flush=True)
"""


def test_processes_racing_to_create_one_key(remote: Remote, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, remote.url, "label/slot", f"process {i}", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=remote.child_env(),
            text=True,
        )
        for i in range(3)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=30)
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            results.append(out.strip())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert sorted(results) == ["False", "False", "True"]
    winner = results.index("True")
    assert open_store(remote.url).get("label/slot") == f"process {winner}".encode()
