"""The mount as users and tools see it: real FUSE, ordinary file I/O and shell tools."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import pytest

from argonfs import codec
from argonfs.errors import NotFound as NotFound_
from tests.fs.conftest import assert_read_only


def seed(repo, n: int = 20) -> None:
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}", "year": 2000 + i} for i in range(n)))
    repo.put("main", "authors", {"_id": "ada", "name": "Ada"})


def sh(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=cwd).stdout


def oserror(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


# ---------------------------------------------------------------------- reading


def test_layout_sizes_and_attributes(repo, mnt):
    seed(repo)
    bundle = repo.create_bundle("main", "v1", label="production")
    assert sorted(os.listdir(mnt.path)) == ["branches", "bundles", "labels"]
    assert os.listdir(mnt / "branches") == ["main"]
    assert sorted(os.listdir(mnt / "branches/main")) == ["authors", "papers"]
    names = os.listdir(mnt / "branches/main/papers")
    assert sorted(names) == sorted(f"{i}.json" for i in range(20))
    for name in names:
        path = mnt / "branches/main/papers" / name
        data = path.read_bytes()
        st = path.stat()
        assert st.st_size == len(data)
        assert json.loads(data)["_id"] == int(name[:-5])
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644 and st.st_nlink == 1
    doc = repo.get("main", "papers", "3")
    st = (mnt / "branches/main/papers/3.json").stat()
    t = doc.time.replace(tzinfo=UTC)
    assert st.st_mtime_ns == int(t.timestamp()) * 10**9 + t.microsecond * 1000
    assert (mnt / "branches/main/papers/3.json").read_bytes() == doc.rendered
    # inode numbers are stable
    assert (mnt / "branches/main/papers/3.json").stat().st_ino == st.st_ino
    d = (mnt / "branches/main").stat()
    assert stat.S_ISDIR(d.st_mode) and d.st_nlink == 2 + 2  # . and .. plus two collections
    assert mnt.path.stat().st_nlink == 5 and (mnt / "branches").stat().st_nlink == 3
    assert (mnt / "branches/main/papers").stat().st_nlink == 2
    # . and .. are listed and right
    listing = sh("ls", "-a", str(mnt / "branches/main")).split()
    assert listing[:2] == [".", ".."]
    assert (mnt / "branches/main/papers/..").stat().st_ino == d.st_ino
    # bundles are read-only copies, labels are symlinks to them
    bpath = mnt / "bundles" / bundle.id
    assert os.listdir(mnt / "bundles") == [bundle.id]
    assert stat.S_IMODE((bpath / "papers/3.json").stat().st_mode) == 0o444
    assert (bpath / "papers/3.json").read_bytes() == doc.rendered
    assert os.readlink(mnt / "labels/production") == f"../bundles/{bundle.id}"
    assert (mnt / "labels/production/papers/3.json").read_bytes() == doc.rendered


def test_unknown_names_and_time_travel(repo, mnt):
    seed(repo, 3)
    seq = repo.head("main")
    repo.put("main", "papers", {"_id": 1, "title": "changed"})
    for missing in ["nope", "branches/nope", "bundles/nope", "labels/nope", "branches/main/nope", "branches/main/papers/99.json", "branches/main/papers/x.txt"]:
        assert oserror(os.stat, mnt / missing) == errno.ENOENT, missing
    old = mnt / f"branches/main@{seq}"
    assert f"main@{seq}" not in os.listdir(mnt / "branches")  # resolves on lookup, not listed
    assert json.loads((old / "papers/1.json").read_bytes())["title"] == "paper 1"
    assert json.loads((mnt / "branches/main/papers/1.json").read_bytes())["title"] == "changed"
    assert oserror(os.stat, mnt / f"branches/main@{seq + 5}") == errno.ENOENT
    # by time, like @SEQ
    at = next(repo.log(f"main@{seq}")).time.isoformat() + "Z"  # the import's commit
    assert json.loads((mnt / f"branches/main@{at}/papers/1.json").read_bytes())["title"] == "paper 1"
    assert oserror(open, mnt / f"branches/main@{at}/papers/1.json", "w") == errno.EROFS
    assert oserror(os.stat, mnt / "branches/main@1999-01-01") == errno.ENOENT


def test_large_collection_streams_in_name_order(repo, mnt):
    repo.import_documents("main", "big", ({"_id": f"d{i:05d}"} for i in range(2500)))
    names = sh("ls", "-f", str(mnt / "branches/main/big")).split()
    assert names[:2] == [".", ".."]
    assert names[2:] == [f"d{i:05d}.json" for i in range(2500)]
    # seekdir/telldir: offsets stay valid across pages
    out = subprocess.run([sys.executable, "-c", SEEK_SCRIPT, str(mnt / "branches/main/big")], check=True, capture_output=True, text=True).stdout.split()
    assert out[0] == out[1], "seekdir back to a telldir offset must return the same entry"


SEEK_SCRIPT = r"""
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_ulong), ("d_off", ctypes.c_long), ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte), ("d_name", ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
d = libc.opendir(sys.argv[1].encode())
for _ in range(1500):
    libc.readdir(d)
pos = libc.telldir(d)
first = libc.readdir(d).contents.d_name
for _ in range(700):
    libc.readdir(d)
libc.seekdir(d, pos)
again = libc.readdir(d).contents.d_name
print(first.decode(), again.decode())
"""


# ---------------------------------------------------------------------- writing with Python


def test_python_writes_commit_on_close(repo, mnt):
    seed(repo, 3)
    papers = mnt / "branches/main/papers"
    (papers / "new.json").write_text('{"title": "fresh"}')
    doc = repo.get("main", "papers", "new")
    assert doc.doc == {"_id": "new", "title": "fresh"} and doc.author == "root"
    assert (papers / "new.json").read_bytes() == doc.rendered == b'{"title": "fresh"}'  # the bytes written
    assert (papers / "new.json").stat().st_size == len(doc.rendered)
    # overwrite
    (papers / "1.json").write_text('{"_id": 1, "v": 2}')
    assert repo.get("main", "papers", "1").doc == {"_id": 1, "v": 2}
    # partial write at an offset, inside one open: one version
    before = repo.head("main")
    with open(papers / "2.json", "r+b") as f:
        data = f.read()
        at = data.index(b"paper 2")
        f.seek(at)
        f.write(b"PAPER")
        f.seek(0, 2)
    assert repo.get("main", "papers", "2").doc["title"] == "PAPER 2"
    assert repo.head("main") == before + 1
    # truncate, then a write that leaves invalid JSON: rejected at close
    f = open(papers / "0.json", "r+b")  # noqa: SIM115 (the test checks what close() answers)
    f.truncate(0)
    f.write(b'{"_id": 0, ')
    assert oserror(f.close) == errno.EINVAL
    assert repo.get("main", "papers", "0").doc["title"] == "paper 0"
    # append: whitespace keeps it valid; the same document with other bytes is a version
    # of those bytes (docs/mount.md, "Bytes written are the bytes read")
    with open(papers / "0.json", "ab") as f:
        f.write(b"\n\n")
    assert repo.head("main") == before + 2
    assert (papers / "0.json").read_bytes() == codec.render(repo.get("main", "papers", "0").doc) + b"\n\n"
    # truncate to a prefix, then extend
    with open(papers / "new.json", "r+b") as f:
        f.truncate(1)
        f.seek(1)
        f.write(b'"_id": "new", "t": [1, 2]}')
    assert repo.get("main", "papers", "new").doc == {"_id": "new", "t": [1, 2]}
    with open(papers / "3.json", "w") as f:
        f.write('{"_id": 3,')
        f.flush()
        f.write(' "t": 1}')
    assert repo.get("main", "papers", "3").doc == {"_id": 3, "t": 1}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"_id": 7, "x": 1}', "does not match"),
        (b"", "empty"),
    ],
)
def test_invalid_writes_keep_the_previous_version(repo, mnt, content, why):
    seed(repo, 3)
    path = mnt / "branches/main/papers/1.json"
    before = path.read_bytes()
    f = open(path, "wb")  # noqa: SIM115 (the test checks what close() answers)
    f.write(content)
    if content:
        assert oserror(f.close) == errno.EINVAL
    else:
        f.close()  # an empty file is rejected at release, where close cannot report it
    deadline = time.monotonic() + 5
    while "rejected" not in mnt.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "rejected" in mnt.log_text()
    assert path.read_bytes() == before
    assert repo.get("main", "papers", "1").rendered == before
    # a new name with bad content leaves nothing behind
    new = mnt / "branches/main/papers/55.json"
    f = open(new, "wb")  # noqa: SIM115 (the test checks what close() answers)
    f.write(b'{"_id": 56}')
    assert oserror(f.close) == errno.EINVAL
    with pytest.raises(NotFound_):
        repo.get("main", "papers", "55")


def test_oversized_write_is_refused(repo, mnt):
    seed(repo, 1)
    path = mnt / "branches/main/papers/0.json"
    before = path.read_bytes()
    big = b'{"_id": 0, "blob": "' + b"x" * (codec.MAX_DOCUMENT_SIZE + 10) + b'"}'
    with pytest.raises(OSError) as info, open(path, "wb") as f:
        f.write(big)
    assert info.value.errno in (errno.EFBIG, errno.EINVAL)
    assert repo.get("main", "papers", "0").rendered == before


def test_read_only_views(repo, mnt):
    seed(repo, 2)
    bundle = repo.create_bundle("main", "v1")
    seq = repo.head("main")
    for root in (f"bundles/{bundle.id}", f"branches/main@{seq}"):
        assert_read_only(mnt / root)
    assert repo.get("main", "papers", "0").doc["title"] == "paper 0"


def test_collections_branches_and_labels(repo, mnt):
    seed(repo, 3)
    main = mnt / "branches/main"
    os.mkdir(main / "empty")
    assert repo.collection_exists("main", "empty") and os.listdir(main / "empty") == []
    os.rmdir(main / "papers")  # drops the collection in this branch, even when not empty
    assert not repo.collection_exists("main", "papers")
    assert sorted(os.listdir(main)) == ["authors", "empty"]
    os.mkdir(mnt / "branches/feature")
    assert repo.branch("feature").parent_name == "main"
    assert "feature" in os.listdir(mnt / "branches")
    (mnt / "branches/feature/authors/bob.json").write_text('{"name": "Bob"}')
    assert oserror(os.stat, main / "authors/bob.json") == errno.ENOENT
    bundle = repo.create_bundle("feature", "b")
    os.symlink(f"../bundles/{bundle.id}", mnt / "labels/stable")
    assert repo.label("stable")["bundle"] == bundle.id
    assert json.loads((mnt / "labels/stable/authors/bob.json").read_text())["name"] == "Bob"
    os.unlink(mnt / "labels/stable")
    assert [lab["name"] for lab in repo.list_labels()] == []
    assert oserror(os.rename, main / "authors/ada.json", mnt / "branches/feature/authors/ada.json") == errno.EXDEV


# ---------------------------------------------------------------------- shell tools


def test_shell_tools(repo, mnt, tmp_path):
    seed(repo, 10)
    main = mnt / "branches/main"
    out = sh("ls", "-l", str(main / "papers"))
    assert out.count(".json") == 10 and "-rw-r--r--" in out
    assert json.loads(sh("cat", str(main / "papers/4.json")))["year"] == 2004
    found = sh("find", str(mnt / "branches"), "-name", "*.json").split()
    assert len(found) == 11
    # cp -r out and back in
    sh("cp", "-r", str(main / "papers"), str(tmp_path / "copy"))
    assert len(os.listdir(tmp_path / "copy")) == 10
    sh("cp", "-r", str(tmp_path / "copy"), str(main / "copied"))
    assert sorted(repo.collections("main")) == ["authors", "copied", "papers"]
    assert repo.get("main", "copied", "4").doc == repo.get("main", "papers", "4").doc
    # mv renames a document: it takes the id of its new name
    sh("mv", str(main / "papers/5.json"), str(main / "papers/50.json"))
    assert repo.get("main", "papers", "50").doc["_id"] == 50
    with pytest.raises(NotFound_):
        repo.get("main", "papers", "5")
    # sed -i writes a temporary file and renames it over the target
    sh("sed", "-i", "s/paper 6/edited by sed/", str(main / "papers/6.json"))
    assert repo.get("main", "papers", "6").doc["title"] == "edited by sed"
    assert sorted(os.listdir(main / "papers")) == sorted(f"{i}.json" for i in [0, 1, 2, 3, 4, 6, 7, 8, 9, 50])
    # rm
    sh("rm", str(main / "papers/7.json"))
    with pytest.raises(NotFound_):
        repo.get("main", "papers", "7")
    # rsync -a into a new collection (temporaries renamed into place, chmod/utimes accepted)
    src = tmp_path / "rs"
    src.mkdir()
    for i in range(5):
        (src / f"r{i}.json").write_text(json.dumps({"n": i}))
    subprocess.run(["rsync", "-a", f"{src}/", f"{main}/synced/"], check=True, capture_output=True)
    assert [e.stem for e in repo.entries("main", "synced")] == [f"r{i}" for i in range(5)]
    assert not [n for n in os.listdir(main / "synced") if not n.endswith(".json")]
    # rm -r of a collection
    sh("rm", "-r", str(main / "synced"))
    assert not repo.collection_exists("main", "synced")


def test_vim_style_save(repo, mnt):
    """What vim does on :w — a swap file, a probe file, a backup by rename, the new
    content written to the name, the backup removed."""
    seed(repo, 2)
    papers = mnt / "branches/main/papers"
    swap = papers / ".1.json.swp"
    swap.write_bytes(b"\0" * 4096)
    probe = papers / "4913"
    probe.write_bytes(b"")
    probe.unlink()
    os.rename(papers / "1.json", papers / "1.json~")
    assert oserror(os.stat, papers / "1.json") == errno.ENOENT
    (papers / "1.json").write_text('{"_id": 1, "title": "from vim"}\n')
    os.unlink(papers / "1.json~")
    swap.unlink()
    assert repo.get("main", "papers", "1").doc["title"] == "from vim"
    assert sorted(os.listdir(papers)) == ["0.json", "1.json"]
    # the other pattern: write a temporary file, rename it over the target
    tmp = papers / ".0.json.tmp123"
    tmp.write_text('{"_id": 0, "title": "atomic"}')
    assert ".0.json.tmp123" in os.listdir(papers)
    assert repo.get("main", "papers", "0").doc["title"] == "paper 0"
    os.rename(tmp, papers / "0.json")
    assert repo.get("main", "papers", "0").doc["title"] == "atomic"
    assert sorted(os.listdir(papers)) == ["0.json", "1.json"]
    # a temporary with bad content cannot replace the document
    tmp.write_text("{broken")
    assert oserror(os.rename, tmp, papers / "0.json") == errno.EINVAL
    assert repo.get("main", "papers", "0").doc["title"] == "atomic"


# ---------------------------------------------------------------------- several processes and mounts


def test_two_mounts_see_each_others_writes(repo, mount_factory):
    seed(repo, 2)
    a, b = mount_factory(), mount_factory()
    path_b = b / "branches/main/papers/0.json"
    assert json.loads(path_b.read_text())["title"] == "paper 0"
    (a / "branches/main/papers/0.json").write_text('{"_id": 0, "title": "from a"}')
    assert json.loads((a / "branches/main/papers/0.json").read_text())["title"] == "from a"  # own write: at once
    deadline = time.monotonic() + 5
    while json.loads(path_b.read_text())["title"] != "from a":
        assert time.monotonic() < deadline, "the other mount never saw the write"
        time.sleep(0.1)
    (b / "branches/main/papers/new.json").write_text("{}")
    deadline = time.monotonic() + 5
    while not (a / "branches/main/papers/new.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)


READER = r"""
import os, sys, json
root = sys.argv[1]
n = 0
for name in sorted(os.listdir(root)):
    with open(os.path.join(root, name), "rb") as f:
        data = f.read()
    assert len(data) == os.stat(os.path.join(root, name)).st_size
    json.loads(data)
    n += 1
print(n)
"""


def test_many_readers_at_once(repo, mnt):
    repo.import_documents("main", "many", ({"_id": i, "pad": "x" * (i % 50)} for i in range(300)))
    procs = [subprocess.Popen([sys.executable, "-c", READER, str(mnt / "branches/main/many")], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6
    assert outs == ["300"] * 6


def test_writer_killed_mid_write_leaves_nothing_partial(repo, mnt):
    seed(repo, 1)
    path = mnt / "branches/main/papers/0.json"
    before = path.read_bytes()
    script = f"""
import os, time
f = open({str(path)!r}, "wb", buffering=0)
f.write(b'{{"_id": 0, "title": "half')
print("written", flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    proc.kill()
    proc.wait()
    assert path.read_bytes() == before
    assert repo.get("main", "papers", "0").rendered == before


def test_restart_shows_the_same_data(repo, mount_factory):
    seed(repo, 5)
    first = mount_factory()
    (first / "branches/main/papers/kept.json").write_text('{"k": 1}')
    listing = sorted(os.listdir(first / "branches/main/papers"))
    mount_factory.stop(first)
    second = mount_factory()
    assert sorted(os.listdir(second / "branches/main/papers")) == listing
    assert (second / "branches/main/papers/kept.json").read_text() == '{"k": 1}'  # the bytes written
    assert repo.get("main", "papers", "kept").doc == {"_id": "kept", "k": 1}  # the name gives the _id


def test_read_log(repo, mount_factory):
    seed(repo, 3)
    bundle = repo.create_bundle("main", "v1", label="production")
    m = mount_factory("--read-log")
    for i in range(3):
        (m / f"branches/main/papers/{i}.json").read_bytes()
    (m / "labels/production/papers/1.json").read_bytes()
    (m / "branches/main/papers/2.json").stat()  # a stat is not a read
    deadline = time.monotonic() + 10
    while len(repo.read_log()) < 4:  # stored in batches, about once a second
        assert time.monotonic() < deadline, repo.read_log()
        time.sleep(0.2)
    rows = repo.read_log()
    assert sorted((r["ref"], r["collection"], r["id"]) for r in rows) == sorted(
        [("main", "papers", "0"), ("main", "papers", "1"), ("main", "papers", "2"), (bundle.id, "papers", "1")]
    )
    assert {r["user"] for r in rows} == {"root"}
    assert [r["id"] for r in repo.read_log(bundle.id)] == ["1"]
    (m / "branches/main/papers/0.json").read_bytes()
    mount_factory.stop(m)  # what is still buffered is stored at unmount
    assert len(repo.read_log("main")) == 4
