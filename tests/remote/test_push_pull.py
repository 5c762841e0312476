"""Push, pull, labels and gc of remotes, over every backend (``remote_url``: a local
directory, the GCS emulator, the S3 emulator), with real child processes for the
killed and concurrent pushes."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import bson
import orjson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from argonfs.errors import Corrupt, InvalidName, NotFound, ReadOnly, WrongFormat
from argonfs.remote import format as f
from argonfs.remote import gc as remote_gc
from argonfs.remote import reading
from argonfs.remote.objects import open_store
from argonfs.remote.pull import pull
from argonfs.remote.push import push_bundle
from argonfs.store import Repository

PUSHER = Path(__file__).with_name("pusher.py")
SMALL_PACKS = 4096


@pytest.fixture
def origin(remote_url: str) -> reading.Remote:
    """The remote under test, as the bundle format reads it."""
    return reading.Remote(open_store(remote_url))


@pytest.fixture
def other(mongo_uri: str):
    """A second repository on the same server (what pulls)."""
    from argonfs.store.db.mongo import client

    name = f"argonfs_test_{uuid.uuid4().hex[:12]}"
    repo = Repository.open(mongo_uri, name, author="puller")
    repo.init()
    yield repo
    client(mongo_uri).drop_database(name)


def people(n: int, tag: str = "") -> list[dict]:
    return [{"_id": i, "name": f"person {i}{tag}", "tags": ["a", "b"], "score": i * 1.5} for i in range(n)]


def bodies(repo: Repository, ref: str) -> dict[tuple[str, str], bytes]:
    return {(c, d.stem): d.rendered for c in repo.collections(ref) for d in repo.documents(ref, c)}


def listing(repo: Repository, ref: str) -> dict[tuple[str, str], tuple[int, str, int]]:
    return {(c, e.stem): (e.size, e.hash, e.mtime_ns) for c in repo.collections(ref) for e in repo.entries(ref, c)}


EVERY_TYPE = {
    "null": None,
    "bool": True,
    "int32": 7,
    "int64": Int64(5),
    "big": 2**40,
    "double": 1.5,
    "negzero": -0.0,
    "nan": float("nan"),
    "inf": float("-inf"),
    "string": "héllo \u2603",
    "date": datetime.datetime(2020, 1, 2, 3, 4, 5, 678000),
    "olddate": datetime.datetime(1, 1, 1),
    "oid": ObjectId("65a1b2c3d4e5f60718293a4b"),
    "decimal": Decimal128("1.10"),
    "binary": Binary(b"\x00\x01", 128),
    "uuid": Binary(bytes(range(16)), 4),
    "bytes": b"\xff\x00",
    "regex": Regex("^a.*", "im"),
    "timestamp": Timestamp(1, 2),
    "code": Code("x = 1"),
    "min": MinKey(),
    "max": MaxKey(),
    "nested": {"list": [1, [2, {"x": None}]], "empty": {}},
}
IDS = [ObjectId("65a1b2c3d4e5f60718293a4c"), 42, Int64(3), "plain", "42", "a/b", 1.5, datetime.datetime(2021, 5, 6), {"k": 1}, True, "x" * 300]


def test_every_bson_type_round_trips_through_push_and_pull(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    docs = [{"_id": i, **EVERY_TYPE} for i in IDS]
    repo.import_documents("main", "types", docs)
    repo.put("main", "types", {"_id": "touched", "v": 1}, mtime=1_600_000_000_123_456_789)
    repo.create_collection("main", "empty")
    bundle = repo.create_bundle("main", "every type", label="prod")
    push_bundle(repo, origin, bundle.id, label="prod")

    report = pull(other, origin, "prod")
    assert (report.bundle, report.branch, report.label) == (bundle.id, "prod", "prod")
    assert other.bundle(bundle.id).time == bundle.time
    assert other.label("prod")["bundle"] == bundle.id
    assert other.collections(bundle.id) == ["empty", "types"]
    for doc in docs:
        mine = repo.get_id(bundle.id, "types", doc["_id"]).doc
        theirs = other.get_id(bundle.id, "types", doc["_id"]).doc
        assert bson.encode(theirs) == bson.encode(mine)  # byte-identical BSON, types included
    assert bodies(other, bundle.id) == bodies(repo, bundle.id)
    assert listing(other, bundle.id) == listing(repo, bundle.id)  # sizes, hashes, mtimes
    assert other.stat(bundle.id, "types", "touched").mtime_ns == 1_600_000_000_123_456_789


def test_incremental_push_uploads_only_the_changed_share(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(2000))
    first = push_bundle(repo, origin, repo.create_bundle("main", "v1", label="prod").id, label="prod")
    assert first.uploaded_documents == 2000 and first.base is None
    for i in range(0, 2000, 100):  # 1%
        repo.put("main", "people", {"_id": i, "name": "changed"})
    repo.delete("main", "people", "7")
    v2 = repo.create_bundle("main", "v2", label="prod")
    second = push_bundle(repo, origin, v2.id, label="prod")
    assert second.base == first.bundle
    assert second.uploaded_documents == 20
    assert second.bytes_uploaded / first.bytes_uploaded < 0.02
    assert [s.bundle for s in origin.label_history("prod")] == [v2.id, first.bundle]

    # what the second bundle serves is exactly the repository's state, through the layers
    desc = origin.descriptor(v2.id)
    assert [e.stem for e in origin.entries(desc, "people")] == [e.stem for e in repo.entries(v2.id, "people")]
    with pytest.raises(NotFound):
        origin.stat(desc, "people", "7")
    assert origin.bodies([origin.stat(desc, "people", "100")]) == [repo.get(v2.id, "people", "100").rendered]

    # pulling the label again downloads only what changed
    pull(other, origin, first.bundle, branch="prod")
    again = pull(other, origin, "prod")
    assert (again.downloaded, again.deleted, again.unchanged) == (20, 1, 1979)
    assert bodies(other, v2.id) == bodies(repo, v2.id)
    assert bodies(other, first.bundle) == bodies(repo, first.bundle)  # the first pull's bundle is intact


def test_a_pull_into_a_new_branch_forks_from_a_close_local_bundle(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(500))
    v1 = repo.create_bundle("main", "v1")
    push_bundle(repo, origin, v1.id)
    for i in range(0, 500, 50):
        repo.put("main", "people", {"_id": i, "name": "changed"})
    v2 = repo.create_bundle("main", "v2")
    push_bundle(repo, origin, v2.id)  # its base on the remote: v1
    pull(other, origin, v1.id)
    report = pull(other, origin, v2.id, branch="fresh")  # forked from v1 here: only the change is fetched
    assert (report.downloaded, report.unchanged) == (10, 490)
    pulled = other.bundle(v1.id)
    fresh = other.branch("fresh")
    assert (fresh.parent, fresh.fork_seq) == (pulled.branch_id, pulled.seq)
    assert [b.name for b in other.list_branches()] == ["fresh", "main"]  # a bundle pulled by id has no branch
    assert bodies(other, v2.id) == bodies(repo, v2.id)


def test_a_pushed_bundle_is_pushed_once(repo: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(50))
    bundle = repo.create_bundle("main", "v1")
    push_bundle(repo, origin, bundle.id)
    again = push_bundle(repo, origin, bundle.id)
    assert again.existed and again.objects_uploaded == 0


def _push_child(mongo_uri: str, repo: Repository, url: str, bundle: str, label: str | None = None, **env: str) -> subprocess.Popen:
    argv = [sys.executable, str(PUSHER), mongo_uri, repo.db.name, url, bundle, *([label] if label else [])]
    return subprocess.Popen(argv, env={**os.environ, "ARGONFS_TEST_PACK_TARGET": str(SMALL_PACKS), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("kill_after", [2, 6])
def test_a_push_killed_part_way_leaves_nothing_visible_and_completes_when_run_again(
    repo: Repository, other: Repository, origin: reading.Remote, remote_url: str, mongo_uri: str, kill_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.import_documents("main", "people", people(300))
    bundle = repo.create_bundle("main", "v1", label="prod")
    child = _push_child(mongo_uri, repo, remote_url, bundle.id, "prod", ARGONFS_TEST_KILL_AFTER=str(kill_after))
    assert child.wait(timeout=120) == -9, child.stderr.read() if child.stderr else ""
    fresh = reading.Remote(open_store(remote_url))
    assert fresh.bundle_ids() == []
    with pytest.raises(NotFound):
        fresh.label("prod")
    with pytest.raises(NotFound):
        pull(other, fresh, bundle.id)

    monkeypatch.setattr(f, "PACK_TARGET", SMALL_PACKS)  # the same packing as the killed run
    report = push_bundle(repo, fresh, bundle.id, label="prod")
    assert report.objects_skipped >= kill_after - 2  # (the marker counts as one of the killed run's objects)
    assert pull(other, fresh, "prod").documents == 300
    assert bodies(other, bundle.id) == bodies(repo, bundle.id)


def test_two_processes_pushing_one_label_both_land_in_order(repo: Repository, remote_url: str, mongo_uri: str) -> None:
    repo.import_documents("main", "people", people(100))
    one = repo.create_bundle("main", "one")
    repo.put("main", "people", {"_id": 1, "name": "two"})
    two = repo.create_bundle("main", "two")
    children = [_push_child(mongo_uri, repo, remote_url, b.id, "prod") for b in (one, two)]
    slots = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        slots.append(int(out.decode().strip()))
    assert sorted(slots) == [1, 2]
    remote = reading.Remote(open_store(remote_url))
    history = remote.label_history("prod")
    assert [s.slot for s in history] == [2, 1]
    assert {s.bundle for s in history} == {one.id, two.id}
    assert remote.label("prod").bundle == history[0].bundle


def test_remote_gc_spares_a_push_in_flight_and_deletes_old_orphans(
    repo: Repository, other: Repository, remote_url: str, mongo_uri: str, tmp_path: Path
) -> None:
    repo.import_documents("main", "people", people(200))
    kept = repo.create_bundle("main", "kept")
    push_bundle(repo, reading.Remote(open_store(remote_url)), kept.id)

    repo.put("main", "people", {"_id": 1, "name": "in flight"})
    flying = repo.create_bundle("main", "in flight")
    pause = tmp_path / "go"
    child = _push_child(mongo_uri, repo, remote_url, flying.id, ARGONFS_TEST_PAUSE=str(pause))
    try:
        deadline = time.monotonic() + 60
        while not Path(str(pause) + ".reached").exists():
            assert child.poll() is None and time.monotonic() < deadline, "the push never reached its descriptor"
            time.sleep(0.05)
        report = remote_gc.collect(reading.Remote(open_store(remote_url)))  # the default grace: 1 hour
        assert report.deleted == 0 and report.kept_young > 0
        pause.touch()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    # a killed push leaves orphans; with no grace they go, and every bundle still reads whole
    repo.put("main", "people", {"_id": 2, "name": "orphaned"})
    orphaned = repo.create_bundle("main", "orphaned")
    killed = _push_child(mongo_uri, repo, remote_url, orphaned.id, ARGONFS_TEST_KILL_AFTER="1")
    assert killed.wait(timeout=60) == -9
    report = remote_gc.collect(reading.Remote(open_store(remote_url)), grace=0)
    assert report.deleted >= 1 and report.bundles == 2
    again = remote_gc.collect(reading.Remote(open_store(remote_url)), grace=0)
    assert again.deleted == 0
    remote = reading.Remote(open_store(remote_url))
    for bundle in (kept, flying):
        pull(other, remote, bundle.id)
        assert bodies(other, bundle.id) == bodies(repo, bundle.id)


def _corrupt(origin: reading.Remote, key: str, damage) -> None:
    """Replace an object with damaged bytes through the backend itself."""
    data = origin.store.get(key)
    origin.store.delete(key)
    assert origin.store.put_if_absent(key, damage(data))


def names(repo: Repository) -> tuple[list[str], list[str], list[str]]:
    """What a reader can name: branches, bundles, labels."""
    return [b.name for b in repo.list_branches()], [b.id for b in repo.list_bundles()], [lab["name"] for lab in repo.list_labels()]


@pytest.mark.parametrize("how", ["id", "branch", "label"])
@pytest.mark.parametrize("damage", [lambda d: d[:-7] + bytes(7), lambda d: d[: len(d) // 2]], ids=["flipped", "truncated"])
def test_a_corrupted_pack_fails_the_pull_and_leaves_nothing(repo: Repository, other: Repository, origin: reading.Remote, damage, how: str) -> None:
    repo.import_documents("main", "people", people(100))
    bundle = repo.create_bundle("main", "v1", label="prod")
    push_bundle(repo, origin, bundle.id, label="prod")
    (pack,) = [o.key for o in origin.store.list("packs/")]
    _corrupt(origin, pack, damage)
    before = names(other)
    ref, branch = {"id": (bundle.id, None), "branch": (bundle.id, "pulled"), "label": ("prod", None)}[how]
    with pytest.raises(Corrupt, match="does not match its hash"):
        pull(other, reading.Remote(open_store(origin.url)), ref, branch=branch)
    assert names(other) == before  # no branch, bundle or label appeared
    for name in (bundle.id, "pulled", "prod"):
        with pytest.raises(NotFound):
            other.resolve(name)


def test_a_pulled_bundle_id_means_the_bundle_and_is_read_only(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(5))
    bundle = repo.create_bundle("main", "v1")
    push_bundle(repo, origin, bundle.id)
    report = pull(other, origin, bundle.id)
    assert report.branch is None
    assert names(other) == (["main"], [bundle.id], [])  # the bundle, and no branch of its name
    assert other.resolve(bundle.id).kind == "bundle"
    with pytest.raises(ReadOnly):
        other.put(bundle.id, "people", {"_id": 1, "name": "changed"})
    with pytest.raises(ReadOnly):
        other.delete(bundle.id, "people", "1")
    with pytest.raises(InvalidName, match="shape of a bundle id"):
        other.create_branch(bundle.id)
    with pytest.raises(InvalidName, match="shape of a bundle id"):
        pull(other, origin, bundle.id, branch=bundle.id)
    assert bodies(other, bundle.id) == bodies(repo, bundle.id)

    # pulled again with --branch, its (unnamed) branch gets that name and takes writes
    again = pull(other, origin, bundle.id, branch="work")
    assert (again.existed, again.branch, again.downloaded) == (True, "work", 0)
    other.put("work", "people", {"_id": 1, "name": "changed"})
    assert bodies(other, bundle.id) == bodies(repo, bundle.id)  # the bundle is still the bundle
    assert other.get("work", "people", "1").doc["name"] == "changed"


def _pull_child(mongo_uri: str, repo: Repository, url: str, ref: str, env: dict[str, str]) -> subprocess.Popen:
    argv = [sys.executable, "-m", "argonfs", "--mongo", mongo_uri, "--repo", repo.db.name, "pull", url, ref]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _cli(mongo_uri: str, repo: Repository, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "argonfs", "--mongo", mongo_uri, "--repo", repo.db.name, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _staged_versions(repo: Repository) -> int:
    """Documents written (and not reclaimed) to branches a pull staged (no name yet)."""
    staged = [r["_id"] for r in repo.db["branches"].find({"pull": {"$exists": True}}, {"_id": 1})]
    return repo.db["versions"].count_documents({"b": {"$in": staged}, "op": "put", "gc": {"$exists": False}}) if staged else 0


KILL_POINTS = ["staged", "written", "delay-0.5", "delay-1.5", "delay-3"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_pull_killed_at_any_point_leaves_nothing_or_the_whole_bundle(
    repo: Repository, other: Repository, remote, mongo_uri: str, procs: list[subprocess.Popen], tmp_path: Path, point: str
) -> None:
    """SIGKILL of a real ``argonfs pull`` of a label: at points the test sees in the
    database (the staged branch exists; some of its versions are written) nothing a reader
    can name may appear; at fixed delays the pull may also have finished its bundle, which
    is then whole.  gc reclaims the staged versions, and pulling again completes."""
    origin = reading.Remote(open_store(remote.url))
    repo.import_documents("main", "people", people(3000))
    bundle = repo.create_bundle("main", "v1", label="prod")
    push_bundle(repo, origin, bundle.id, label="prod")
    before = names(other)
    child = _pull_child(mongo_uri, other, remote.url, "prod", remote.child_env())
    procs.append(child)
    deadline = time.monotonic() + 120
    if point.startswith("delay-"):
        time.sleep(float(point.split("-")[1]))
    else:
        while not (other.db["branches"].count_documents({"pull": bundle.id}) if point == "staged" else _staged_versions(other)):
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the pull never reached the kill point"
            time.sleep(0.01)
    child.kill()
    child.wait(timeout=60)
    after = names(other)
    whole = bundle.id in after[1]
    if not point.startswith("delay-"):
        assert not whole and child.returncode == -9
    if whole:  # killed after the commit point: the bundle is complete
        assert bodies(other, bundle.id) == bodies(repo, bundle.id)
    else:
        assert after == before
        exported = _cli(mongo_uri, other, "export", bundle.id, str(tmp_path / "out"))
        assert exported.returncode == 2 and "unknown ref" in exported.stderr, exported.stderr
        for args in (["branch", "list"], ["bundle", "list"], ["label", "list"]):
            listed = _cli(mongo_uri, other, *args)
            assert listed.returncode == 0 and bundle.id not in listed.stdout and "prod" not in listed.stdout, listed.stdout

    written = _staged_versions(other)
    report = other.gc(min_age=datetime.timedelta(0), grace=datetime.timedelta(0))
    assert names(other) == after
    if written and not whole:
        assert report.total_records >= written and _staged_versions(other) == 0  # the killed pull's versions are reclaimed
    done = pull(other, reading.Remote(open_store(remote.url)), "prod")
    assert done.branch == "prod"
    assert names(other)[0] == ["main", "prod"] and other.label("prod")["bundle"] == bundle.id
    assert bodies(other, bundle.id) == bodies(repo, bundle.id) == bodies(other, "prod")


def test_a_corrupted_chunk_or_descriptor_is_refused(repo: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(10))
    bundle = repo.create_bundle("main", "v1")
    push_bundle(repo, origin, bundle.id)
    (chunk,) = [o.key for o in origin.store.list("chunks/")]
    _corrupt(origin, chunk, lambda d: d[:-1])
    fresh = reading.Remote(open_store(origin.url))
    with pytest.raises(Corrupt, match="does not match its hash"):
        list(fresh.entries(fresh.descriptor(bundle.id), "people"))
    _corrupt(origin, f.bundle_key(bundle.id), lambda d: d.replace(b'"v1"', b'"v2"'))
    with pytest.raises(Corrupt, match="check"):
        reading.Remote(open_store(origin.url)).descriptor(bundle.id)


def test_a_remote_of_another_format_is_refused(repo: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(3))
    push_bundle(repo, origin, repo.create_bundle("main", "v1").id)
    _corrupt(origin, f.MARKER, lambda d: d.replace(b'"format":1', b'"format":99'))
    with pytest.raises(WrongFormat, match="format 99"):
        reading.Remote(open_store(origin.url)).bundle_ids()
    empty = origin.url.rstrip("/") + "-empty"
    if empty.startswith("file://"):
        Path(urlparse(empty).path).mkdir()  # (a directory remote must exist, as a bucket must)
    with pytest.raises(NotFound, match="not an argonfs remote"):
        reading.Remote(open_store(empty)).bundle_ids()


def test_cli_remotes_push_pull_ls_log_gc(repo: Repository, other: Repository, remote_url: str, mongo_uri: str) -> None:
    repo.import_documents("main", "people", people(20))
    repo.create_bundle("main", "v1", label="prod")

    def cli(r: Repository, *args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "argonfs", "--mongo", mongo_uri, "--repo", r.db.name, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    assert cli(repo, "remote", "add", "origin", remote_url).returncode == 0
    assert "origin" in cli(repo, "remote", "list").stdout
    dup = cli(repo, "remote", "add", "origin", remote_url)
    assert dup.returncode == 3 and "already exists" in dup.stderr
    pushed = cli(repo, "push", "origin", "prod", "main", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert "bundled main as" in pushed.stderr
    import json

    reports = json.loads(pushed.stdout)
    assert reports[0]["label"] == "prod" and reports[1]["base"] == reports[0]["bundle"]
    ls = json.loads(cli(repo, "remote", "ls", "origin", "--json").stdout)
    assert {b["bundle"] for b in ls["bundles"]} == {r["bundle"] for r in reports}
    assert [lb["name"] for lb in ls["labels"]] == ["prod"]
    log = cli(repo, "remote", "log", remote_url, "prod")
    assert reports[0]["bundle"] in log.stdout
    pulled = cli(other, "pull", remote_url, "prod", "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["documents"] == 20
    gc = cli(repo, "remote", "gc", "origin", "--dry-run", "--json")
    assert json.loads(gc.stdout)["deleted"] == 0
    missing = cli(other, "pull", remote_url, "nope")
    assert missing.returncode == 2 and "no bundle or label 'nope'" in missing.stderr
    assert cli(repo, "remote", "remove", "origin").returncode == 0
    assert cli(repo, "remote", "ls", "origin").returncode == 2


def test_a_missing_bucket_is_one_clear_line(remote, mongo_uri: str) -> None:
    scheme = {"gcs": "gs://", "s3": "s3://", "local": "file:///nonexistent"}[remote.kind]
    url = f"{scheme}argonfs-test-missing-{uuid.uuid4().hex[:8]}/prefix"
    for args in (["remote", "ls", url], ["pull", url, "prod"]):
        argv = [sys.executable, "-m", "argonfs", "--mongo", mongo_uri, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=remote.child_env())
        assert done.returncode == 7, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and url.split("/prefix")[0].split("/")[-1] in lines[0], done.stderr


def test_kept_bytes_survive_push_and_pull(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    """Kept bytes travel: the pushed bundle holds the bytes its versions keep, a pull
    keeps them (same sizes and hashes), and pulling again downloads nothing."""
    pretty = {i: f'{{\n    "n": {i},\n    "_id": {i}\n}}'.encode() for i in range(40)}
    for i, raw in pretty.items():
        repo.put("main", "c", {"n": i, "_id": i}, raw=raw)
    repo.put("main", "c", {"_id": 99, "n": 0})  # rendered canonically
    bundle = repo.create_bundle("main", "kept", label="kept")
    push_bundle(repo, origin, bundle.id, label="kept")
    pull(other, origin, "kept")
    for i, raw in pretty.items():
        assert other.get("kept", "c", str(i)).rendered == raw
    assert [(e.stem, e.size, e.hash) for e in other.entries("kept", "c")] == [(e.stem, e.size, e.hash) for e in repo.entries(bundle.id, "c")]
    head = other.head("kept")
    report = pull(other, origin, "kept")
    assert report.downloaded == 0 and other.head("kept") == head


def _spread_change(repo: Repository, branch: str, n: int) -> None:
    """Every 100th document rewritten (1%, spread over the whole collection)."""
    for i in range(0, n, 100):
        repo.put(branch, "people", {"_id": i, "name": f"changed on {branch}"})


def test_the_first_push_of_a_feature_branch_uploads_only_its_change(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    """A feature branch forked from a pushed bundle, 1% changed: its first push finds the
    main bundle by content (not by branch: a newer bundle of a branch named ``feature``,
    from another repository and unrelated, is passed over) and uploads <= 3% of the bytes."""
    repo.import_documents("main", "people", people(2000))
    main = repo.create_bundle("main", "main v1")
    first = push_bundle(repo, origin, main.id)
    other.import_documents("main", "people", people(300, tag=" elsewhere"))
    unrelated = other.create_bundle("main", "unrelated")
    other.create_branch("feature", unrelated.id)
    other.put("feature", "people", {"_id": 0, "name": "unrelated feature"})
    push_bundle(other, origin, other.create_bundle("feature", "unrelated feature").id)

    repo.create_branch("feature", main.id)
    _spread_change(repo, "feature", 2000)
    feature = repo.create_bundle("feature", "feature v1")
    second = push_bundle(repo, origin, feature.id)
    assert second.base == main.id and second.similarity is not None and second.similarity > 0.9
    assert second.uploaded_documents == 20
    assert second.bytes_uploaded / first.bytes_uploaded <= 0.03

    fresh = reading.Remote(open_store(origin.url))
    assert [(e.stem, e.size, e.hash, e.mtime_ns) for e in fresh.entries(fresh.descriptor(feature.id), "people")] == [
        (e.stem, e.size, e.hash, e.mtime_ns) for e in repo.entries(feature.id, "people")
    ]
    report = pull(other, fresh, feature.id, branch="pulled")
    assert report.documents == 2000
    assert bodies(other, feature.id) == bodies(repo, feature.id)
    assert listing(other, feature.id) == listing(repo, feature.id)


def test_two_repositories_pushing_the_same_data_share_their_packs(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    """Another repository's bundle of the same documents (other ids, branch, mtimes) is
    the base of the second push: it uploads no pack, only its manifest and descriptor."""
    repo.import_documents("main", "people", people(2000))
    first = push_bundle(repo, origin, repo.create_bundle("main", "one").id)
    other.create_branch("elsewhere", empty=True)
    other.import_documents("elsewhere", "people", people(2000))
    theirs = other.create_bundle("elsewhere", "two")
    second = push_bundle(other, origin, theirs.id)
    assert second.base == first.bundle and second.similarity == 1.0
    assert second.uploaded_documents == 0
    assert [k for k in second.uploaded if k.startswith("packs/")] == []
    assert second.bytes_uploaded / first.bytes_uploaded <= 0.5  # a manifest: no document's bytes
    assert {o.key for o in origin.store.list("packs/")} == {f.pack_key(e.pack) for e in origin.entries(origin.descriptor(first.bundle), "people")}
    fresh = reading.Remote(open_store(origin.url))
    assert {e.pack for e in fresh.entries(fresh.descriptor(theirs.id), "people")} <= {o.key[6:-5] for o in fresh.store.list("packs/")}
    pull(repo, fresh, theirs.id, branch="theirs")
    assert bodies(repo, theirs.id) == bodies(other, theirs.id)
    assert listing(repo, theirs.id) == listing(other, theirs.id)  # their mtimes, not the first push's


def _without_sketch(origin: reading.Remote, bundle_id: str) -> None:
    """Rewrite a descriptor as an argonfs before sketches wrote it (sealed, no ``sketch``)."""
    desc = origin.descriptor(bundle_id)
    extra = {k: v for k, v in desc.extra.items() if k != "sketch"}
    old = f.Descriptor(desc.bundle, desc.time_ns, desc.branch, desc.message, desc.author, desc.collections, desc.counts, extra)
    origin.store.delete(f.bundle_key(bundle_id))
    assert origin.store.put_if_absent(f.bundle_key(bundle_id), old.to_bytes())


def test_a_remote_pushed_before_sketches_stays_readable_and_pushable(repo: Repository, other: Repository, origin: reading.Remote) -> None:
    """A format-1 remote whose bundles have no sketch: read and pulled as before, a push
    takes its base by the old rule (the label's bundle, else the same branch), and the
    remote stays format 1 (no upgrade: the sketch is a field older readers ignore)."""
    repo.import_documents("main", "people", people(1000))
    v1 = repo.create_bundle("main", "v1", label="prod")
    push_bundle(repo, origin, v1.id, label="prod")
    _without_sketch(origin, v1.id)
    old = reading.Remote(open_store(origin.url))
    assert old.descriptor(v1.id).sketch is None

    _spread_change(repo, "main", 1000)
    v2 = repo.create_bundle("main", "v2", label="prod")
    second = push_bundle(repo, old, v2.id, label="prod")
    assert (second.base, second.similarity, second.uploaded_documents) == (v1.id, None, 10)
    assert orjson.loads(old.store.get(f.MARKER))["format"] == 1
    assert reading.Remote(open_store(origin.url)).descriptor(v2.id).sketch is not None

    # a feature branch: the sketched v2 is found by content, the old v1 only by branch
    repo.create_branch("feature", v1.id)
    _spread_change(repo, "feature", 1000)
    third = push_bundle(repo, reading.Remote(open_store(origin.url)), repo.create_bundle("feature", "f").id)
    assert third.base == v2.id and third.uploaded_documents == 10

    pull(other, reading.Remote(open_store(origin.url)), v1.id)
    pull(other, reading.Remote(open_store(origin.url)), "prod")
    for bundle in (v1, v2):
        assert bodies(other, bundle.id) == bodies(repo, bundle.id)
        assert listing(other, bundle.id) == listing(repo, bundle.id)


def test_a_push_passes_over_a_candidate_base_it_cannot_read(repo: Repository, origin: reading.Remote) -> None:
    repo.import_documents("main", "people", people(200))
    v1 = repo.create_bundle("main", "v1")
    push_bundle(repo, origin, v1.id)
    _spread_change(repo, "main", 200)
    v2 = repo.create_bundle("main", "v2")
    push_bundle(repo, origin, v2.id)
    _corrupt(origin, f.bundle_key(v2.id), lambda d: d.replace(b'"v2"', b'"v3"'))
    repo.put("main", "people", {"_id": 5, "name": "v4"})
    report = push_bundle(repo, reading.Remote(open_store(origin.url)), repo.create_bundle("main", "v4").id)
    assert report.base == v1.id
