"""Nothing argonfs creates in its data directory is readable by other users (0700
directories, 0600 files), whatever the umask and whichever command creates it: mounts
of a repository on an external MongoDB (their state files and logs) and a remote mount
(its cache).  The embedded server's own files: tests/store/test_embedded.py."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from argonfs.daemon import alive
from tests.fs.conftest import READY_DEADLINE
from tests.fs.test_remote_mount import NO_MONGO, publish


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 0 for this test and the commands it starts: every mode bit is argonfs's own."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def open_to_others(home: Path) -> list[str]:
    """Each path under ``home`` (and ``home``) with a mode bit for group or others."""
    paths = [home]
    for root, dirs, files in os.walk(home):
        paths += [Path(root) / name for name in (*dirs, *files)]
    modes = {p: stat.S_IMODE(os.lstat(p).st_mode) for p in paths}
    return [f"{mode:04o} {p.relative_to(home.parent)}" for p, mode in modes.items() if mode & 0o077]


@pytest.mark.deadline(120)
@pytest.mark.parametrize("remote", ["local"], indirect=True)
def test_nothing_in_the_data_directory_is_readable_by_others(repo, remote, mount_factory, mongo_uri, repo_name, tmp_path, open_umask):
    home = tmp_path / "home"  # every mount's ARGONFS_HOME; the first command creates it
    repo.put("main", "c", {"_id": 1})
    bundle = repo.create_bundle("main", "v1", label="prod")
    publish(repo, remote.url, bundle.id)
    assert not home.exists()

    m = mount_factory()  # external MongoDB, foreground: its state file
    assert os.listdir(m / "branches/main/c") == ["1.json"]
    r = mount_factory("--remote", remote.url, env=NO_MONGO)  # a remote: its cache
    assert (r / "labels/prod/c/1.json").read_bytes().startswith(b"{")
    background = tmp_path / "background"
    background.mkdir()
    env = dict(os.environ, ARGONFS_MONGO_URI=mongo_uri, ARGONFS_REPO=repo_name, ARGONFS_HOME=str(home))
    command = [sys.executable, "-m", "argonfs"]
    pid = None
    try:
        out = subprocess.run([*command, "mount", str(background)], env=env, capture_output=True, text=True, timeout=READY_DEADLINE)
        assert out.returncode == 0, out.stderr  # in the background: its log as well
        pid = int(out.stderr.split("daemon pid ")[1].split(",")[0])
        assert os.listdir(background / "branches/main/c") == ["1.json"]
        states = sorted(p.suffix for p in (home / "mounts").iterdir())
        assert states == [".json", ".json", ".json", ".log"]
        assert [p for p in (home / "remote-cache").rglob("*") if p.is_file()], "the remote mount cached nothing"
        assert open_to_others(home) == []
        out = subprocess.run([*command, "umount", str(background)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    finally:
        if os.path.ismount(background):
            subprocess.run(["fusermount3", "-u", "-z", str(background)], check=False, capture_output=True)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert open_to_others(home) == []
