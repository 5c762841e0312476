"""The mount keeps the promises of a local disk where users rely on them: concurrent
writers never hang it, open files follow renames and survive unlinks, names are
checked when created, rsync is incremental, and a dead daemon can be cleaned up."""

from __future__ import annotations

import errno
import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from argonfs import codec
from argonfs.errors import NotFound
from tests.fs.conftest import READY_DEADLINE, abort_on_timeout


def oserror(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


# ---------------------------------------------------------------------- concurrency

REWRITER = r"""
import sys
path, me, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(rounds):
    with open(path, "w") as f:  # every writer's text has the same length
        f.write('{"_id": 1, "writer": %d, "round": %d}' % (me, 100000 + i))
"""

READ_LOOP = r"""
import os, sys, time
root, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < until:
    for name in os.listdir(root):
        try:
            with open(os.path.join(root, name), "rb") as f:
                f.read()
        except FileNotFoundError:
            pass
        n += 1
    os.stat(root)
print(n)
"""


@pytest.mark.parametrize("writers", [2, 4])
def test_writers_of_one_file_never_hang_the_mount(repo, mnt, writers):
    repo.put("main", "c", {"_id": 1, "writer": -1, "round": 0})
    path = mnt / "branches/main/c/1.json"
    rounds = 600 // writers  # the same number of writes whatever the number of writers
    procs = [subprocess.Popen([sys.executable, "-c", REWRITER, str(path), str(w), str(rounds)]) for w in range(writers)]
    watcher = subprocess.Popen([sys.executable, "-c", READ_LOOP, str(mnt / "branches/main/c"), "3"], stdout=subprocess.DEVNULL)
    codes = abort_on_timeout(mnt, [*procs, watcher], 120)
    assert codes == [0] * (writers + 1)
    os.stat(mnt)  # the root still answers
    final = repo.get("main", "c", "1").doc
    assert final["round"] == 100000 + rounds - 1 and final["writer"] in range(writers)
    assert json.loads(path.read_bytes()) == final


def test_readers_and_a_writer_in_one_collection_never_hang(repo, mnt):
    repo.import_documents("main", "c", ({"_id": i, "n": 0} for i in range(20)))
    root = mnt / "branches/main/c"
    writer = f"""
import time
until = time.monotonic() + 4
i = 0
while time.monotonic() < until:
    i += 1
    with open({str(root)!r} + "/%d.json" % (i % 20), "w") as f:
        f.write('{{"n": %d}}' % i)
"""
    readers = [subprocess.Popen([sys.executable, "-c", READ_LOOP, str(root), "4"], stdout=subprocess.PIPE) for _ in range(8)]
    procs = [*readers, subprocess.Popen([sys.executable, "-c", writer])]
    assert abort_on_timeout(mnt, procs, 120) == [0] * 9
    assert all(int(p.stdout.read()) > 0 for p in readers)
    assert "Traceback" not in mnt.log_text()


# ---------------------------------------------------------------------- open files and renames


def test_writes_after_renaming_an_open_file_land_on_the_new_name(repo, mnt):
    c = mnt / "branches/main/c"
    c.mkdir()
    fd = os.open(c / "a.tmp", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"hello ")
    os.rename(c / "a.tmp", c / "b.tmp")
    assert os.write(fd, b"world") == 5
    os.close(fd)
    assert (c / "b.tmp").read_bytes() == b"hello world"
    assert not (c / "a.tmp").exists()
    # two descriptors of one file see one file: sizes, reads and mmap agree
    fd1 = os.open(c / "b.tmp", os.O_RDWR)
    fd2 = os.open(c / "b.tmp", os.O_RDWR)
    os.pwrite(fd2, b"x" * 100_000, 0)
    assert os.fstat(fd1).st_size == 100_000
    assert os.pread(fd1, 200_000, 0) == b"x" * 100_000
    with mmap.mmap(fd1, 0, access=mmap.ACCESS_READ) as m:
        assert m[99_999:100_000] == b"x"
    os.close(fd1)
    os.close(fd2)
    assert (c / "b.tmp").stat().st_size == 100_000


def test_renaming_a_document_open_for_writing_commits_to_the_new_name(repo, mnt):
    repo.put("main", "c", {"_id": 1, "title": "old"})
    c = mnt / "branches/main/c"
    fd = os.open(c / "1.json", os.O_RDWR | os.O_TRUNC)
    os.write(fd, b'{"_id": 1, "title": "edited"}')
    os.rename(c / "1.json", c / "2.json")
    os.close(fd)
    assert repo.get("main", "c", "2").doc == {"_id": 2, "title": "edited"}
    with pytest.raises(NotFound):
        repo.get("main", "c", "1")
    assert sorted(os.listdir(c)) == ["2.json"]
    assert json.loads((c / "2.json").read_bytes()) == {"_id": 2, "title": "edited"}
    assert oserror(os.stat, c / "1.json") == errno.ENOENT


def test_unlinked_open_files_keep_working_until_closed(repo, mnt):
    repo.put("main", "c", {"_id": 3, "v": 1})
    c = mnt / "branches/main/c"
    fd = os.open(c / "scratch.bin", os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"0123456789")
    os.unlink(c / "scratch.bin")
    assert os.fstat(fd).st_size == 10
    assert os.pread(fd, 4, 2) == b"2345"
    os.ftruncate(fd, 4)
    assert os.pwrite(fd, b"AB", 4) == 2
    assert os.fstat(fd).st_size == 6 and os.pread(fd, 100, 0) == b"0123AB"
    assert "scratch.bin" not in os.listdir(c)
    os.close(fd)
    with tempfile.TemporaryFile(dir=c) as t:
        t.write(b"spill" * 1000)
        t.seek(0)
        assert t.read() == b"spill" * 1000
    # a document removed while open for writing stays removed: its buffer is dropped
    fd = os.open(c / "3.json", os.O_RDWR)
    os.unlink(c / "3.json")
    os.pwrite(fd, b'{"_id": 3, "v": 2}', 0)
    assert os.fstat(fd).st_nlink == 0
    os.close(fd)
    with pytest.raises(NotFound):
        repo.get("main", "c", "3")
    assert os.listdir(c) == []


def test_vim_sed_and_mv_onto_open_files(repo, mnt):
    repo.put("main", "c", {"_id": 1, "t": "a"})
    repo.put("main", "c", {"_id": 2, "t": "b"})
    c = mnt / "branches/main/c"
    reader = open(c / "1.json", "rb")  # noqa: SIM115 (held open across the sed)
    subprocess.run(["sed", "-i", 's/"a"/"A"/', str(c / "1.json")], check=True, timeout=60)
    assert repo.get("main", "c", "1").doc["t"] == "A"
    assert json.loads(reader.read())["t"] == "a"  # the open descriptor still reads what it opened
    reader.close()
    held = os.open(c / "2.json", os.O_RDONLY)
    subprocess.run(["mv", str(c / "1.json"), str(c / "2.json")], check=True, timeout=60)
    assert repo.get("main", "c", "2").doc == {"_id": 2, "t": "A"}
    assert json.loads(os.pread(held, 1000, 0))["t"] == "b"
    os.close(held)
    assert sorted(os.listdir(c)) == ["2.json"]


# ---------------------------------------------------------------------- names


def test_names_that_cannot_be_documents_are_refused_when_created(repo, mnt):
    c = mnt / "branches/main/c"
    c.mkdir()
    for name in ["~weird.json", "x" * 201 + ".json", "12345678901234567890123.json", "-0.json"]:
        assert oserror(os.open, c / name, os.O_WRONLY | os.O_CREAT) == errno.EINVAL, name
    (c / ".rsync-temp.json.Xy12").write_bytes(b"{}")  # a hidden temporary is fine
    os.rename(c / ".rsync-temp.json.Xy12", c / ".keep")
    assert oserror(os.rename, c / ".keep", c / "-0.json") == errno.EINVAL
    assert sorted(os.listdir(c)) == [".keep"]
    assert oserror(os.mkdir, mnt / "branches/a@b") == errno.EINVAL
    long = "n" * 256
    assert oserror(os.open, c / long, os.O_WRONLY | os.O_CREAT) == errno.ENAMETOOLONG
    assert oserror(os.stat, c / long) == errno.ENAMETOOLONG
    assert oserror(os.mkdir, mnt / "branches" / long) == errno.ENAMETOOLONG
    (c / ("t" * 255)).write_bytes(b"ok")
    assert os.statvfs(c).f_namemax == 255
    assert oserror(os.symlink, "x", c / "link") == errno.EPERM
    assert oserror(os.link, c / ("t" * 255), c / "hard") == errno.EPERM


# ---------------------------------------------------------------------- rsync and times


def _rsync(src: Path, dst: Path) -> str:
    out = subprocess.run(["rsync", "-a", "--stats", f"{src}/", f"{dst}/"], check=True, capture_output=True, text=True, timeout=120)
    return out.stdout


def _transferred(stats: str) -> int:
    line = next(ln for ln in stats.splitlines() if ln.startswith("Number of regular files transferred"))
    return int(line.split(":")[1].replace(",", ""))


def test_rsync_twice_transfers_and_stores_nothing_the_second_time(repo, mnt, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):  # as argonfs export writes them
        (src / f"{i}.json").write_bytes(codec.render({"_id": i, "title": f"t{i}"}))
        os.utime(src / f"{i}.json", ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i))
    repo.create_collection("main", "c")
    dst = mnt / "branches/main/c"
    assert _transferred(_rsync(src, dst)) == 30
    head = repo.head("main")
    assert os.stat(dst / "7.json").st_mtime_ns == 1_600_000_000_123_456_796
    assert _transferred(_rsync(src, dst)) == 0
    assert repo.head("main") == head
    # a source in another layout is sent once, as a version of its bytes (the document is
    # the same), and then found unchanged: the mount reads back the bytes written
    (src / "7.json").write_text('{"title":"t7","_id":7}')
    os.utime(src / "7.json", ns=(1_600_000_000_123_456_796, 1_600_000_000_123_456_796))
    assert _transferred(_rsync(src, dst)) == 1
    assert repo.head("main") == head + 1
    assert (dst / "7.json").read_bytes() == (src / "7.json").read_bytes()
    assert _transferred(_rsync(src, dst)) == 0
    head = repo.head("main")
    # writing identical bytes adds no version either
    (dst / "3.json").write_bytes((dst / "3.json").read_bytes())
    assert repo.head("main") == head


def test_times_set_on_documents_are_kept(repo, mount_factory):
    repo.put("main", "c", {"_id": 1})
    m = mount_factory()
    path = m / "branches/main/c/1.json"
    subprocess.run(["touch", "-d", "2021-03-04 05:06:07 UTC", str(path)], check=True, timeout=60)
    want = 1614834367 * 10**9
    assert os.stat(path).st_mtime_ns == want
    assert repo.stat("main", "c", "1").mtime == want
    mount_factory.stop(m)
    again = mount_factory()
    assert os.stat(again / "branches/main/c/1.json").st_mtime_ns == want


def test_access_times_set_on_scratch_files_are_kept(repo, mnt):
    repo.put("main", "c", {"_id": 1})
    atime, mtime = 1_500_000_000_111_222_333, 1_600_000_000_444_555_666
    for name in ("notes.txt", "2.json"):  # a temporary, and a new document with no content yet
        path = mnt / f"branches/main/c/{name}"
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        os.utime(path, ns=(atime, mtime))
        st = os.stat(path)
        assert (st.st_atime_ns, st.st_mtime_ns) == (atime, mtime), name
        os.utime(path, ns=(atime + 1, mtime))
        assert (os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns) == (atime + 1, mtime), name


# ---------------------------------------------------------------------- df, labels


def test_df_reports_space(repo, mnt):
    st = os.statvfs(mnt)
    assert st.f_blocks > 0 and st.f_bavail > 0 and st.f_bavail <= st.f_blocks
    assert st.f_files > 0 and st.f_favail > 0
    out = subprocess.run(["df", "-P", str(mnt.path)], check=True, capture_output=True, text=True, timeout=60).stdout
    fields = out.splitlines()[1].split()
    assert int(fields[1]) > 0 and int(fields[3]) > 0


def test_ln_sfn_repoints_a_label_at_once(repo, mnt):
    repo.put("main", "c", {"_id": 1})
    a = repo.create_bundle("main", "a", label="prod").id
    repo.put("main", "c", {"_id": 2})
    b = repo.create_bundle("main", "b").id
    link = mnt / "labels/prod"
    assert os.readlink(link) == f"../bundles/{a}"
    subprocess.run(["ln", "-sfn", f"../bundles/{b}", str(link)], check=True, timeout=60)
    assert os.readlink(link) == f"../bundles/{b}"
    assert repo.label("prod")["bundle"] == b
    assert sorted(os.listdir(link / "c")) == ["1.json", "2.json"]


# ---------------------------------------------------------------------- a daemon that died


def test_a_killed_daemon_leaves_a_mount_that_mount_and_umount_clean_up(repo, mount_factory, mongo_uri, repo_name, tmp_path):
    m = mount_factory()
    m.expected_exit = -signal.SIGKILL
    m.proc.kill()
    m.proc.wait()
    assert oserror(os.statvfs, m.path) == errno.ENOTCONN
    env = dict(os.environ, ARGONFS_MONGO_URI=mongo_uri, ARGONFS_REPO=repo_name, ARGONFS_HOME=str(tmp_path / "home"))
    argonfs = [sys.executable, "-m", "argonfs"]
    out = subprocess.run([*argonfs, "umount", str(m.path)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not os.path.ismount(m.path) and os.path.isdir(m.path)
    # killed again, then mounted over: the dead mount is cleaned up first
    m2 = mount_factory()
    m2.expected_exit = -signal.SIGKILL
    m2.proc.kill()
    m2.proc.wait()
    try:
        out = subprocess.run([*argonfs, "mount", str(m2.path)], env=env, capture_output=True, text=True, timeout=READY_DEADLINE)
        assert out.returncode == 0, out.stderr
        assert os.listdir(m2.path / "branches") == ["main"]
    finally:
        subprocess.run([*argonfs, "umount", str(m2.path)], env=env, capture_output=True, timeout=60, check=False)
    assert not os.path.ismount(m2.path)


def test_a_version_written_behind_the_kernels_back_is_never_read_cut_short(repo, mnt):
    repo.put("main", "c", {"_id": 1, "pad": ""})
    path = mnt / "branches/main/c/1.json"
    for i in range(1, 21):
        os.stat(path)  # the kernel caches this size for up to a second
        repo.put("main", "c", {"_id": 1, "pad": "x" * (i * 37 % 200)})
        time.sleep(0.3)  # past the daemon's head check, within the kernel's attribute timeout
        doc = json.loads(path.read_bytes())  # whole: an old or the new version, never cut
        assert doc["_id"] == 1
    assert json.loads(path.read_bytes()) == repo.get("main", "c", "1").doc


def test_readers_see_committed_versions_while_a_writer_is_half_way(repo, mnt):
    repo.put("main", "c", {"_id": 1, "v": "committed"})
    path = mnt / "branches/main/c/1.json"
    committed = path.read_bytes()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b'{"_id": 1, "v": "half')
    reader = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.stdout.buffer.write(open({str(path)!r}, 'rb').read())"], capture_output=True, timeout=60, check=True
    )
    assert reader.stdout == committed
    os.write(fd, b' way"}')
    os.close(fd)
    assert json.loads(path.read_bytes()) == {"_id": 1, "v": "half way"}
