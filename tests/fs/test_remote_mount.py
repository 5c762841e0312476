"""A remote mounted with no MongoDB: ``argonfs mount --remote URL`` over a remote on
each backend (a directory, the GCS, S3 and Azure emulators) filled by the real push code, read with ordinary tools; every change refused with EROFS;
a label moved by a push shows; corrupted or truncated objects answer EIO, never data."""

from __future__ import annotations

import contextlib
import errno
import filecmp
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pyfuse3
import pytest

from argonfs.cli.mount import parse_size
from argonfs.daemon import remote_cache_dir
from argonfs.errors import NotFound, ReadOnly
from argonfs.fs.limits import BRANCH_TIMEOUT
from argonfs.fs.operations import ArgonOperations
from argonfs.remote.cache import FILE_COST
from argonfs.remote.format import pack_key
from argonfs.remote.objects import open_store
from argonfs.remote.push import push_bundle
from argonfs.remote.reading import Remote
from argonfs.remote.snapshots import RemoteCatalog
from argonfs.runner import ThreadRunner
from argonfs.store.engine.versions import time_ns
from tests.remote import crafted

#: what the daemon is given for MongoDB: nothing listens there, so a daemon that tried
#: to use it would fail to mount
NO_MONGO = {"ARGONFS_MONGO_URI": "mongodb://127.0.0.1:1", "ARGONFS_MONGO_TIMEOUT_MS": "300"}
LONG_ID = "x" * 300  # stored under a hashed (~h) file name


@dataclass
class Published:
    repo: object
    url: str
    bundle: str


def publish(repo, url: str, bundle_id: str, label: str = "prod") -> None:
    push_bundle(repo, Remote(open_store(url)), bundle_id, label=label)


def damage(url: str, key: str, change) -> None:
    """Replace an object of the remote with damaged bytes, through its own backend."""
    store = open_store(url)
    data = store.get(key)
    store.delete(key)
    assert store.put_if_absent(key, change(data))


@pytest.fixture
def published(repo, remote) -> Published:
    """A repository whose bundle ``prod`` is pushed to a remote: a directory, a GCS
    bucket or an S3 bucket (the emulators' environment is set for the daemons too)."""
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}", "body": "x" * (i * 37 % 500)} for i in range(60)))
    repo.put("main", "authors", {"_id": "ada", "name": "Ada"})
    repo.put("main", "authors", {"_id": "émile", "name": "Émile"}, mtime=1_600_000_000_123_456_789)  # touch -d
    repo.put("main", "authors", {"_id": LONG_ID, "name": "long"})
    repo.create_collection("main", "empty")
    bundle = repo.create_bundle("main", "v1", label="prod")
    publish(repo, remote.url, bundle.id)
    return Published(repo, remote.url, bundle.id)


def mount_remote(mount_factory, published: Published, *extra: str, home: Path | None = None):
    env = dict(NO_MONGO)
    if home is not None:
        env["ARGONFS_HOME"] = str(home)
    return mount_factory("--remote", published.url, *extra, env=env)


def quiet(m) -> None:
    """Logs are assertions: a happy path logs no warning, error or traceback."""
    text = m.log_text()
    assert not any(word in text for word in ("WARNING", "ERROR", "Traceback")), text[-3000:]


def oserror(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def wait_for_log(m, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in m.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return m.log_text()


# ---------------------------------------------------------------------- reading


@pytest.mark.deadline(60)
def test_a_remote_reads_like_its_bundle_with_no_mongodb(published, mount_factory, tmp_path, mongo_uri, repo_name, monkeypatch):
    repo, bundle = published.repo, published.bundle
    m = mount_remote(mount_factory, published)
    maps = Path(f"/proc/{m.proc.pid}/maps").read_text()
    assert "pymongo" not in maps and "_cmessage" not in maps, "the daemon imported pymongo"

    assert sorted(os.listdir(m)) == ["branches", "bundles", "labels"]
    assert os.listdir(m / "branches") == []  # a remote has no branches
    assert os.listdir(m / "bundles") == [bundle]
    assert os.listdir(m / "labels") == ["prod"]
    assert os.readlink(m / "labels/prod") == f"../bundles/{bundle}"
    view = repo.pin(bundle)
    assert sorted(os.listdir(m / "labels/prod")) == sorted(repo.collections(view)) == ["authors", "empty", "papers"]
    assert (m / f"bundles/{bundle}").stat().st_mtime_ns == time_ns(repo.bundle(bundle).time)

    # every document: listed name, size, mtime and bytes as the repository has them
    for collection in ("authors", "empty", "papers"):
        entries = {e.stem + ".json": e for e in repo.entries(view, collection)}
        bodies = {d.stem + ".json": d.rendered for d in repo.documents(view, collection)}
        folder = m / "labels/prod" / collection
        assert sorted(os.listdir(folder)) == sorted(entries)
        for name, entry in entries.items():
            st = (folder / name).stat()
            data = (folder / name).read_bytes()
            assert data == bodies[name]
            assert st.st_size == len(data) == entry.size
            assert st.st_mtime_ns == entry.mtime_ns
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444
    assert (m / "labels/prod/authors/émile.json").stat().st_mtime_ns == 1_600_000_000_123_456_789

    # ls -l: the sizes it shows are the bytes cat reads
    listing = subprocess.run(["ls", "-l", str(m / "labels/prod/papers")], check=True, capture_output=True, text=True).stdout
    sizes = {line.split()[-1]: int(line.split()[4]) for line in listing.splitlines()[1:]}
    assert len(sizes) == 60
    for name, size in sizes.items():
        cat = subprocess.run(["cat", str(m / "labels/prod/papers" / name)], check=True, capture_output=True).stdout
        assert len(cat) == size
    found = subprocess.run(["find", str(m / "bundles"), "-type", "f"], check=True, capture_output=True, text=True).stdout.split()
    assert len(found) == 63

    # cp -r out of the mount equals argonfs export of the bundle
    subprocess.run(["cp", "-r", str(m / "labels/prod") + "/.", str(tmp_path / "copied")], check=True)
    env = dict(os.environ, ARGONFS_MONGO_URI=mongo_uri, ARGONFS_REPO=repo_name)
    subprocess.run([sys.executable, "-m", "argonfs", "export", bundle, str(tmp_path / "exported")], check=True, env=env, capture_output=True)
    cmp = filecmp.dircmp(tmp_path / "copied", tmp_path / "exported")
    assert sorted(cmp.common_dirs) == ["authors", "empty", "papers"] and not cmp.left_only and not cmp.right_only
    for sub in cmp.common_dirs:
        names = sorted(os.listdir(tmp_path / "exported" / sub))
        assert sorted(os.listdir(tmp_path / "copied" / sub)) == names
        match, mismatch, errors = filecmp.cmpfiles(tmp_path / "copied" / sub, tmp_path / "exported" / sub, names, shallow=False)
        assert not mismatch and not errors and len(match) == len(names)

    # df: read-only, the documents as used files, the cache (under the data directory) as used bytes
    sv = os.statvfs(m)
    assert sv.f_flag & os.ST_RDONLY
    assert sv.f_files - sv.f_ffree == 63
    monkeypatch.setenv("ARGONFS_HOME", str(tmp_path / "home"))  # the daemon's data directory
    cache = remote_cache_dir(published.url)
    cached = sum(p.stat().st_size for p in cache.iterdir())
    assert cached > 0 and (sv.f_blocks - sv.f_bfree) * sv.f_frsize == cached // 4096 * 4096
    quiet(m)


@pytest.mark.deadline(60)
def test_shard_files_of_a_remote_bundle(published, mount_factory):
    """The shard view (docs/mount.md) over a remote, with no MongoDB: the bundle's
    documents as the repository renders them, 1000 a file (here one file each)."""
    repo, bundle = published.repo, published.bundle
    m = mount_remote(mount_factory, published)
    view = repo.pin(bundle)
    shards = m / "labels/prod/.shards"
    assert sorted(os.listdir(shards)) == ["authors", "empty", "papers"]
    assert os.listdir(shards / "empty") == []
    for collection in ("authors", "papers"):
        bodies = [d.rendered for d in repo.documents(view, collection)]
        assert os.listdir(shards / collection) == ["00000.json"]
        shard = shards / collection / "00000.json"
        data = shard.read_bytes()
        assert data == b"[" + b",\n".join(bodies) + b"]\n" and shard.stat().st_size == len(data)
        assert json.loads(data) == [json.loads(b) for b in bodies]
    with pytest.raises(OSError) as info:
        os.open(shards / "papers/00000.json", os.O_WRONLY)
    assert info.value.errno == errno.EROFS


def test_every_change_is_erofs(published, mount_factory):
    m = mount_remote(mount_factory, published)
    bundle = published.bundle
    doc = m / "labels/prod/papers/1.json"
    before = doc.read_bytes()
    base = m / f"bundles/{bundle}"
    attempts = [
        (open, doc, "w"),
        (open, doc, "a"),
        (open, doc, "r+"),
        (open, base / "papers/99.json", "w"),
        (open, m / "x.json", "w"),
        (os.truncate, doc, 0),
        (os.utime, doc, None),
        (os.chmod, doc, 0o644),
        (os.unlink, doc),
        (os.rename, doc, base / "papers/98.json"),
        (os.mkdir, m / "branches/new"),
        (os.mkdir, m / "labels/new"),
        (os.mkdir, m / "bundles/new"),
        (os.mkdir, base / "newcoll"),
        (os.rmdir, base / "empty"),
        (os.rmdir, m / "branches"),
        (os.unlink, m / "labels/prod"),
        (os.rename, m / "labels/prod", m / "labels/other"),
        (os.symlink, f"../bundles/{bundle}", m / "labels/new"),
        (os.symlink, "x", base / "papers/link.json"),
        (os.link, doc, base / "papers/hard.json"),
    ]
    for fn, *args in attempts:
        assert oserror(fn, *args) == errno.EROFS, (fn.__name__, args)
    for argv in (
        ["touch", str(doc)],
        ["touch", str(base / "papers/new.json")],
        ["rm", "-f", str(doc)],
        ["mv", str(doc), str(base / "papers/2.json")],
        ["mkdir", str(m / "branches/b")],
        ["ln", "-s", f"../bundles/{bundle}", str(m / "labels/l")],
        ["sh", "-c", f"echo '{{}}' > {base / 'papers/1.json'}"],
    ):
        proc = subprocess.run(argv, capture_output=True, text=True)
        assert proc.returncode != 0 and "Read-only file system" in proc.stderr, (argv, proc.stderr)
    assert doc.read_bytes() == before
    assert os.listdir(m / "labels") == ["prod"] and os.listdir(m / "branches") == []
    quiet(m)


async def test_the_catalog_refuses_changes_without_the_kernels_help(published):
    """Even a write that reaches the daemon (the kernel's ``ro`` aside) is refused: the
    catalog answers ReadOnly, which the one error seam turns into EROFS."""
    catalog = RemoteCatalog(Remote(open_store(published.url)))
    try:
        for call in (
            lambda: catalog.set_label("x", published.bundle, author="a"),
            lambda: catalog.delete_label("prod", author="a"),
            lambda: catalog.create_branch("b", author="a"),
            lambda: catalog.delete_branch("b"),
            lambda: catalog.record_reads([{}]),
        ):
            with pytest.raises(ReadOnly, match="mounted read-only"):
                call()
        assert catalog.branch_names() == []
        assert catalog.resolve(published.bundle).kind == "bundle"
        assert catalog.resolve("prod").kind == "label" and catalog.resolve("prod").descriptor.bundle == published.bundle
        for ref in ("nope", "main", "", "..", "a/b"):
            with pytest.raises(NotFound):
                catalog.resolve(ref)
        ops = ArgonOperations(catalog, ThreadRunner(2))
        ctx = SimpleNamespace(uid=os.getuid(), gid=os.getgid(), pid=os.getpid(), umask=0o022)
        branches = ops.inodes.get(("branches",))
        labels = ops.inodes.get(("labels",))
        for call in (
            ops.mkdir(branches.ino, b"new", 0o755, ctx),
            ops.symlink(labels.ino, b"new", f"../bundles/{published.bundle}".encode(), ctx),
            ops.unlink(labels.ino, b"prod", ctx),
            ops.rename(labels.ino, b"prod", labels.ino, b"other", 0, ctx),
        ):
            with pytest.raises(pyfuse3.FUSEError) as info:
                await call
            assert info.value.errno == errno.EROFS
    finally:
        catalog.close()


def test_cache_sizes():
    assert parse_size("1073741824") == 1 << 30
    assert parse_size("512M") == 512 << 20
    assert parse_size("2G") == 2 << 30
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size("64k") == 64 << 10
    for bad in ("", "G", "-1M", "12X", "1 2"):
        with pytest.raises(ValueError):
            parse_size(bad)


# ---------------------------------------------------------------------- labels


@pytest.mark.deadline(60)
def test_a_label_moved_by_a_push_shows_within_the_timeout(published, mount_factory):
    repo, first = published.repo, published.bundle
    m = mount_remote(mount_factory, published)
    old = (m / "labels/prod/papers/1.json").read_bytes()
    assert (m / "labels/prod/papers/2.json").exists()

    repo.put("main", "papers", {"_id": 1, "title": "changed"})
    repo.delete("main", "papers", "2")
    second = repo.create_bundle("main", "v2", label="prod").id
    publish(repo, published.url, second)  # incremental: a delta layer over the first bundle
    moved = time.monotonic()
    while os.readlink(m / "labels/prod") != f"../bundles/{second}":
        assert time.monotonic() - moved < BRANCH_TIMEOUT + 2, "the moved label did not show"
        time.sleep(0.05)
    assert json.loads((m / "labels/prod/papers/1.json").read_bytes())["title"] == "changed"
    assert not (m / "labels/prod/papers/2.json").exists()
    assert len(os.listdir(m / "labels/prod/papers")) == 59
    assert sorted(os.listdir(m / "bundles")) == sorted([first, second])
    assert (m / f"bundles/{first}/papers/1.json").read_bytes() == old  # bundles never change
    assert (m / f"bundles/{second}/papers/1.json").read_bytes() == repo.get(second, "papers", "1").rendered
    quiet(m)


# ---------------------------------------------------------------------- damage


@pytest.mark.deadline(60)
def test_a_corrupted_pack_answers_eio_never_wrong_bytes(published, mount_factory, tmp_path):
    repo, bundle = published.repo, published.bundle
    remote = Remote(open_store(published.url))
    entry = remote.stat(remote.descriptor(bundle), "papers", "5")
    at = entry.offset + entry.size // 2

    def flip(data: bytes) -> bytes:  # one byte of document 5, whose size stays the same
        return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]

    damage(published.url, pack_key(entry.pack), flip)

    m = mount_remote(mount_factory, published, home=tmp_path / "fresh-home")
    papers = m / "labels/prod/papers"
    assert len(os.listdir(papers)) == 60  # listing needs no bodies; reads now fetch in batches of listed neighbours
    assert (papers / "5.json").stat().st_size == entry.size
    for _ in range(2):  # never cached as data
        assert oserror((papers / "5.json").read_bytes) == errno.EIO
    assert subprocess.run(["cat", str(papers / "5.json")], capture_output=True).returncode != 0
    # its neighbours in the same pack block are intact and read correctly
    for i in (4, 6, 7, 0):
        assert (papers / f"{i}.json").read_bytes() == repo.get(bundle, "papers", str(i)).rendered
    assert "5.json in packs/" in wait_for_log(m, "does not match its hash")


@pytest.mark.deadline(60)
def test_a_truncated_chunk_answers_eio_on_listing(published, mount_factory, tmp_path):
    remote = Remote(open_store(published.url))
    (ref,) = remote.descriptor(published.bundle).collections["papers"][0]
    damage(published.url, f"chunks/{ref.hash}.chunk", lambda data: data[: len(data) // 2])

    m = mount_remote(mount_factory, published, home=tmp_path / "fresh-home")
    papers = m / "labels/prod/papers"
    assert oserror(os.listdir, papers) == errno.EIO
    assert oserror(os.stat, papers / "1.json") == errno.EIO
    assert sorted(os.listdir(m / "labels/prod/authors"))[0] == "ada.json"  # other collections still serve
    assert "corrupted or truncated" in wait_for_log(m, "does not match its hash")


# ---------------------------------------------------------------------- untrusted input


BAD_COLLECTIONS = ("..", ".", "", "a/b", "a\x00b", "system.x")
BAD_STEMS = (".", "", "a/b", "a\x00b", "-0")


@pytest.mark.deadline(90)
def test_invalid_names_in_a_remote_are_skipped_and_the_rest_is_listed(published, mount_factory):
    """A stray descriptor copy at ``bundles/sub/X.json``, collections ``..``, ``.``, ``""``,
    ``a/b``, ``a<NUL>b``, and stems no document may have: each skipped and logged once
    (however often it is listed), everything else listed and read as it is; the old mount
    answered EIO for ``ls bundles`` and ``ls`` of the bundle."""
    repo, bundle = published.repo, published.bundle
    origin = Remote(open_store(published.url))
    origin.store.put_if_absent(f"bundles/sub/{bundle}.json", origin.store.get(f"bundles/{bundle}.json"))
    good = crafted.rows(origin, bundle, "papers")
    stems = sorted([*BAD_STEMS, *(row[0] for row in good)])
    source = {stem: good[i % len(good)] for i, stem in enumerate(stems)}  # whose body each name gets
    papers = [[stem, *source[stem][1:]] for stem in stems]
    odd = crafted.one_layer(origin, {**{c: good for c in BAD_COLLECTIONS}, "papers": papers})
    m = mount_remote(mount_factory, published)
    for _ in range(3):
        assert sorted(os.listdir(m / "bundles")) == sorted([bundle, odd])
        assert os.listdir(m / f"bundles/{odd}") == ["papers"]
        listed = sorted(os.listdir(m / f"bundles/{odd}/papers"))
        assert listed == sorted(f"{stem}.json" for stem in stems if stem not in BAD_STEMS)
        for folder in ("bundles", f"bundles/{odd}", f"bundles/{odd}/papers", f"bundles/{odd}/.shards/papers"):
            ls = subprocess.run(["ls", "-la", str(m / folder)], capture_output=True, text=True, timeout=30)
            assert ls.returncode == 0, (folder, ls.stderr)
    for name in listed:
        assert (m / f"bundles/{odd}/papers/{name}").read_bytes() == repo.get(bundle, "papers", source[name[: -len(".json")]][0]).rendered
    text = m.log_text()
    skipped = [line for line in text.splitlines() if "skipped" in line]
    assert len(skipped) == 1 + len(BAD_COLLECTIONS) + len(BAD_STEMS), skipped
    assert sum(f"bundles/sub/{bundle}.json" in line for line in skipped) == 1
    assert "ERROR" not in text and "Traceback" not in text, text[-3000:]


@pytest.mark.deadline(90)
def test_a_size_or_offset_past_the_pack_is_eio_at_once_and_the_cache_stays_bounded(published, mount_factory, tmp_path):
    """A document claiming 9e12 bytes, one past its pack's end and one at an offset past
    it: ``cat`` fails with EIO at once (the old mount spun, ``cat`` sat in state D and the
    cache filled with empty block files), a log line says why, the other documents read,
    and the cache holds no empty file and no more files than its bound allows."""
    repo, bundle = published.repo, published.bundle
    origin = Remote(open_store(published.url))
    good = crafted.rows(origin, bundle, "papers")
    lying = [list(row) for row in good]
    lying[1][1] = 9_000_000_000_000
    lying[2][1] = 40 << 20
    lying[3][5] = 10**12
    odd = crafted.one_layer(origin, {"papers": lying})
    m = mount_remote(mount_factory, published, "--cache-size", "64K", home=tmp_path / "fresh-home")
    folder = m / f"bundles/{odd}/papers"
    assert len(os.listdir(folder)) == len(good)
    assert (folder / f"{lying[1][0]}.json").stat().st_size == 9_000_000_000_000  # what the remote claims; reading it fails
    for row in lying[1:4]:
        cat = subprocess.run(["cat", str(folder / f"{row[0]}.json")], capture_output=True, text=True, timeout=30)
        assert cat.returncode != 0 and "Input/output error" in cat.stderr, (row, cat.stderr)
    for row in (lying[0], *lying[4:]):
        assert (folder / f"{row[0]}.json").read_bytes() == repo.get(bundle, "papers", row[0]).rendered
    text = wait_for_log(m, "is not a document's place")
    assert "past the pack's end" in text and "ends before byte" in text
    files = list(remote_cache_dir_of(tmp_path / "fresh-home", published.url).iterdir())
    assert files and all(p.stat().st_size > 0 for p in files)
    assert len(files) * FILE_COST <= parse_size("64K")


def remote_cache_dir_of(home: Path, url: str) -> Path:
    """The cache directory of a daemon whose data directory is ``home``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARGONFS_HOME", str(home))
        return remote_cache_dir(url)


# ---------------------------------------------------------------------- the command


def argonfs(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "argonfs", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.deadline(90)
def test_mount_in_the_background_from_the_environment(published, tmp_path, monkeypatch):
    """``argonfs mount`` (no --foreground) with ARGONFS_REMOTE and ARGONFS_CACHE_SIZE: the
    daemon it starts gets them on its command line, and the cache stays in its bound."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, **NO_MONGO, ARGONFS_HOME=str(tmp_path / "home"), ARGONFS_REMOTE=published.url, ARGONFS_CACHE_SIZE="16K")
    state = None
    try:
        proc = argonfs("mount", str(mnt), env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"mounted remote {published.url}" in proc.stderr
        state = json.loads(next((tmp_path / "home/mounts").glob("*.json")).read_text())
        argv = Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")
        assert [b"--remote", os.fsencode(published.url), b"--cache-size", b"16384"] == argv[argv.index(b"--remote") : argv.index(b"--remote") + 4]
        assert state["remote"] == published.url
        papers = mnt / "labels/prod/papers"
        assert len([(papers / n).read_bytes() for n in os.listdir(papers)]) == 60
        monkeypatch.setenv("ARGONFS_HOME", str(tmp_path / "home"))
        cache = remote_cache_dir(published.url)
        assert 0 < sum(p.stat().st_size for p in cache.iterdir()) <= 16384
        proc = argonfs("umount", str(mnt), env=env)
        assert proc.returncode == 0, proc.stderr
        assert not os.path.ismount(mnt)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        if state is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state["pid"], signal.SIGKILL)


def test_mount_refuses_what_a_remote_cannot_do(published, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, **NO_MONGO, ARGONFS_HOME=str(tmp_path / "home"))
    proc = argonfs("mount", "--remote", published.url, "--read-log", str(mnt), env=env)
    assert proc.returncode == 2 and "--read-log needs MongoDB" in proc.stderr
    proc = argonfs("mount", "--remote", published.url, "--cache-size", "lots", str(mnt), env=env)
    assert proc.returncode == 2 and "not a size" in proc.stderr
    proc = argonfs("mount", "--remote", "ftp://host/x", str(mnt), env=env)
    assert proc.returncode != 0 and "a remote URL is" in proc.stderr
    proc = argonfs("mount", "--remote", str(tmp_path / "missing"), str(mnt), env=env)
    assert proc.returncode != 0 and "no such directory" in proc.stderr
    (tmp_path / "plain").mkdir()
    proc = argonfs("mount", "--remote", str(tmp_path / "plain"), str(mnt), env=env)
    assert proc.returncode != 0 and "not an argonfs remote" in proc.stderr
    assert not os.path.ismount(mnt)


@pytest.mark.deadline(60)
def test_the_sidecar_entrypoint_serves_a_remote(published, tmp_path):
    """docker/entrypoint.sh with ARGONFS_REMOTE in its environment: the image's sidecar
    serves a remote with no MongoDB and no argument."""
    mnt = tmp_path / "shared/remote"
    ready = tmp_path / "ready"
    env = dict(
        os.environ,
        **NO_MONGO,
        ARGONFS_HOME=str(tmp_path / "home"),
        ARGONFS_REMOTE=published.url,
        ARGONFS_MOUNTPOINT=str(mnt),
        ARGONFS_READY_FILE=str(ready),
        ARGONFS_MOUNT_OPTIONS="allow_other",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    entrypoint = Path(__file__).resolve().parents[2] / "docker/entrypoint.sh"
    proc = subprocess.Popen(["sh", str(entrypoint)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the sidecar was not ready in time"
            time.sleep(0.05)
        options = next(line.split()[3] for line in Path("/proc/self/mounts").read_text().splitlines() if line.split()[1] == str(mnt))
        assert "ro" in options.split(",") and "allow_other" in options.split(",")
        assert len(os.listdir(mnt / "labels/prod/papers")) == 60
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not ready.exists() and not os.path.ismount(mnt)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
