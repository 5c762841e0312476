"""The daemon as a process: background mount and umount, MongoDB going away and
coming back, and the sidecar entrypoint."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from argonfs.daemon import alive
from tests.fs.conftest import READY_DEADLINE

ROOT = Path(__file__).resolve().parents[2]


def _env(mongo_uri: str, repo_name: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, ARGONFS_MONGO_URI=mongo_uri, ARGONFS_REPO=repo_name, ARGONFS_HOME=str(tmp_path / "home"))
    env.update(extra)
    return env


def _cleanup(path: Path, pid: int | None = None) -> None:
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], check=False, capture_output=True)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_background_mount_and_umount(repo, mongo_uri, repo_name, tmp_path):
    repo.put("main", "c", {"_id": 1})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = _env(mongo_uri, repo_name, tmp_path)
    argonfs = [sys.executable, "-m", "argonfs"]
    try:
        out = subprocess.run([*argonfs, "mount", str(mnt)], env=env, capture_output=True, text=True, timeout=READY_DEADLINE)
        assert out.returncode == 0, out.stderr
        assert os.path.ismount(mnt)  # usable as soon as the command returns
        assert os.listdir(mnt / "branches/main/c") == ["1.json"]
        pid = int(out.stderr.split("daemon pid ")[1].split(",")[0])
        again = subprocess.run([*argonfs, "mount", str(mnt)], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and "already a mountpoint" in again.stderr
        out = subprocess.run([*argonfs, "umount", str(mnt)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert not os.path.ismount(mnt)
        assert not alive(pid)  # umount waits for the daemon to finish
    finally:
        _cleanup(mnt)


def test_mount_errors_are_reported(mongo_uri, tmp_path):
    env = _env(mongo_uri, "no_such_repo_here", tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = subprocess.run([sys.executable, "-m", "argonfs", "mount", str(mnt)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no argonfs repository named 'no_such_repo_here'" in out.stderr
    assert not os.path.ismount(mnt)
    out = subprocess.run([sys.executable, "-m", "argonfs", "mount", str(tmp_path / "absent")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "is not a directory" in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mongodb_down_gives_eio_and_recovers(tmp_path, mount_factory):
    """A MongoDB of its own, stopped and restarted on the same port under the mount."""
    from secantus import SecantusDBServer

    from argonfs.store import Repository

    port = _free_port()
    data = tmp_path / "db"
    server = SecantusDBServer(host="127.0.0.1", port=port, storage_path=str(data))
    server.start()
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        repo = Repository.open(uri, "downtest")
        repo.init()
        repo.import_documents("main", "c", ({"_id": i} for i in range(5)))
        m = mount_factory(uri=uri, env={"ARGONFS_REPO": repo.db.name, "ARGONFS_MONGO_TIMEOUT_MS": "1000"})
        assert len(os.listdir(m / "branches/main/c")) == 5
        server.stop()
        time.sleep(1.5)  # let the kernel's short branch timeouts expire
        with pytest.raises(OSError) as info:
            (m / "branches/main/c/3.json").read_bytes()
        assert info.value.errno == errno.EIO
        with pytest.raises(OSError) as info:
            (m / "branches/main/c/9.json").write_text("{}")
        assert info.value.errno in (errno.EIO, errno.ENOENT)
        assert m.proc.poll() is None, "the daemon must stay up"
        assert "cannot reach MongoDB" in m.log_text()
        server = SecantusDBServer(host="127.0.0.1", port=port, storage_path=str(data))
        server.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert (m / "branches/main/c/3.json").read_bytes().startswith(b"{")
                break
            except OSError:
                assert time.monotonic() < deadline, "the mount did not recover"
                time.sleep(0.5)
        (m / "branches/main/c/9.json").write_text("{}")
        assert repo.get("main", "c", "9").doc == {"_id": 9}
    finally:
        server.stop()


def test_sidecar_entrypoint(repo, mongo_uri, repo_name, tmp_path):
    """The Docker image's entrypoint, run directly: ready file once the mount answers,
    SIGTERM unmounts and removes it."""
    repo.put("main", "c", {"_id": "x"})
    mnt = tmp_path / "shared/argon"
    ready = tmp_path / "ready"
    env = _env(
        mongo_uri,
        repo_name,
        tmp_path,
        ARGONFS_MOUNTPOINT=str(mnt),
        ARGONFS_READY_FILE=str(ready),
        ARGONFS_MOUNT_OPTIONS="allow_other",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    proc = subprocess.Popen(["sh", str(ROOT / "docker/entrypoint.sh")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_DEADLINE
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert os.listdir(mnt / "branches/main/c") == ["x.json"]
        assert "allow_other" in Path("/proc/mounts").read_text().split(str(mnt))[1].split("\n")[0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not os.path.ismount(mnt) and not ready.exists()
    finally:
        _cleanup(mnt, proc.pid if proc.poll() is None else None)


def test_a_non_empty_mountpoint_is_refused_unless_asked(repo, mongo_uri, repo_name, tmp_path):
    repo.put("main", "c", {"_id": 1})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (mnt / "notes.txt").write_text("mine")
    env = _env(mongo_uri, repo_name, tmp_path)
    argonfs = [sys.executable, "-m", "argonfs"]
    pid = None
    try:
        out = subprocess.run([*argonfs, "mount", str(mnt)], env=env, capture_output=True, text=True, timeout=READY_DEADLINE)
        assert out.returncode == 6 and "is not empty (1 entries: 'notes.txt')" in out.stderr and "--nonempty" in out.stderr, out.stderr
        assert not os.path.ismount(mnt)
        out = subprocess.run([*argonfs, "mount", "--nonempty", str(mnt)], env=env, capture_output=True, text=True, timeout=READY_DEADLINE)
        assert out.returncode == 0, out.stderr
        pid = int(out.stderr.split("daemon pid ")[1].split(",")[0])
        assert sorted(os.listdir(mnt)) == ["branches", "bundles", "labels"]  # the file is hidden while mounted
        out = subprocess.run([*argonfs, "umount", str(mnt)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert (mnt / "notes.txt").read_text() == "mine"
    finally:
        _cleanup(mnt, pid)


def test_invalid_json_from_a_shell_fails_the_write_and_the_log_says_why(repo, mongo_uri, repo_name, tmp_path):
    """bash ignores errors at close; the write itself answers EINVAL, so the shell says
    'write error' and exits 1, and 'argonfs log --mount' prints the daemon's refusal."""
    repo.put("main", "papers", {"_id": 1, "title": "one"})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = _env(mongo_uri, repo_name, tmp_path)
    argonfs = [sys.executable, "-m", "argonfs"]
    pid = None
    try:
        out = subprocess.run([*argonfs, "mount", str(mnt)], env=env, capture_output=True, text=True, timeout=READY_DEADLINE)
        assert out.returncode == 0, out.stderr
        pid = int(out.stderr.split("daemon pid ")[1].split(",")[0])
        papers = mnt / "branches/main/papers"
        for name, content in (("5.json", "{bad"), ("1.json", '{"_id": 1, "title": "two" x}')):
            shell = subprocess.run(["bash", "-c", f"echo '{content}' > {papers / name}"], capture_output=True, text=True, timeout=60)
            assert shell.returncode == 1 and "write error: Invalid argument" in shell.stderr, (name, shell)
        assert sorted(os.listdir(papers)) == ["1.json"]  # the new name with bad bytes is gone
        assert repo.get("main", "papers", "1").doc == {"_id": 1, "title": "one"}
        ok = subprocess.run(["bash", "-c", f"""echo '{{"_id": 1, "title": "three"}}' > {papers / "1.json"}"""], capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert repo.get("main", "papers", "1").doc["title"] == "three"
        shown = subprocess.run([*argonfs, "log", "--mount", str(mnt)], env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        refused = [line for line in shown.stdout.splitlines() if " WARNING " in line and "refused (EINVAL)" in line]
        assert len(refused) == 2, shown.stdout
        assert "write to /branches/main/papers/5.json refused (EINVAL): not a JSON document at byte 1: unexpected 'b'" in refused[0]
        assert "write to /branches/main/papers/1.json refused (EINVAL): not a JSON document at byte 26: unexpected 'x'" in refused[1]
        assert "recent warnings and errors" in shown.stderr
        out = subprocess.run([*argonfs, "umount", str(mnt)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    finally:
        _cleanup(mnt, pid)
    missing = subprocess.run([*argonfs, "log", "--mount", str(tmp_path / "elsewhere")], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no mount log for" in missing.stderr
