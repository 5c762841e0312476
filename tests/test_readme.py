"""The README's tour, run from README.md itself, in order, so the README cannot drift.

The tour runs in a fresh working directory with a fresh data directory: on the embedded
server it starts itself (its last line stops it), or on ARGONFS_TEST_MONGO_URI in a
database of its own.  Its mountpoint becomes a temporary directory.  Every line must
succeed (``set -e``); whatever happens, the mount is unmounted, its daemon and the
embedded server are stopped, all by the pids they reported.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOUR_MOUNTPOINT = "/mnt/argon"
TOUR_REMOTE = "/tmp/argon-remote"
TOUR_APP = "/tmp/argon-app"
DEADLINE = 600


def sh_block(heading: str) -> str:
    """The first sh block under a ``## heading`` of README.md."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"README.md has no sh block under '## {heading}'"
    return match.group(1)


def python_block(heading: str) -> str:
    """The first python block under a ``## heading`` of README.md, as a shell line that
    runs it with the tour's ``python`` (the venv's)."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"README.md has no python block under '## {heading}'"
    return f"python - <<'README_PYTHON'\n{match.group(1)}README_PYTHON\n"


def tour() -> str:
    """The tour, its Python snippet, then the Remotes and Live capture sections, which
    continue from it: in the order the README gives them."""
    return sh_block("A tour") + python_block("A tour") + sh_block("Remotes") + sh_block("Live capture")


def _stop_daemon(pid: int) -> None:
    """SIGKILL the tour's mount daemon if that pid is still an argonfs process."""
    try:
        if b"argonfs" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


def test_readme_tour_runs_in_order(tmp_path: Path, repo_name: str) -> None:
    script = tour()
    assert TOUR_MOUNTPOINT in script and "argonfs umount" in script
    work = tmp_path / "work"
    work.mkdir()
    (work / "scripts").symlink_to(ROOT / "scripts")
    (work / ".venv").symlink_to(sys.prefix)
    mountpoint = tmp_path / "argon"
    env = dict(os.environ, ARGONFS_HOME=str(tmp_path / "home"), ARGONFS_AUTHOR="tour")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env.pop("ARGONFS_MONGO_URI", None)
    if os.environ.get("ARGONFS_TEST_MONGO_URI"):
        env.update(ARGONFS_MONGO_URI=os.environ["ARGONFS_TEST_MONGO_URI"], ARGONFS_REPO=repo_name)
    else:
        env.pop("ARGONFS_REPO", None)
    proc = subprocess.Popen(
        [
            "bash",
            "-c",
            "set -ex\n"
            + script.replace(TOUR_MOUNTPOINT, str(mountpoint)).replace(TOUR_REMOTE, str(tmp_path / "remote")).replace(TOUR_APP, str(tmp_path / "app")),
        ],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out = err = ""
    try:
        out, err = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the tour did not finish within {DEADLINE} s:\n{err[-4000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # the tour's own processes left (a failed tour's source server)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if os.path.ismount(mountpoint):  # the tour failed before its umount
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False, capture_output=True)
            for pid in re.findall(r"daemon pid (\d+)", err):
                _stop_daemon(int(pid))
        subprocess.run([sys.executable, "-m", "argonfs", "server", "stop"], env=env, check=False, capture_output=True, timeout=60)
    assert proc.returncode == 0, f"a tour line failed (exit {proc.returncode}):\n{err[-4000:]}"
    assert not os.path.ismount(mountpoint)
    # a few outputs a reader of the tour is promised
    assert '"title": "revised"' in out  # the label's document, read through the mount
    assert "experiment\nmain\n" in out  # ls of /branches
    assert "branch 'main' is now protected" in out
    # the Python snippet, after the tour: its prints, and the protected main as one line
    assert "{'_id': 'ada', 'name': 'Ada'}\nada " in out
    assert "branch 'main' is protected: merge into it or revert it" in out
    assert "Traceback" not in err
    assert '"name":"experiment"' in out  # the API's branches, by curl
    # the remote: a label mounted from it with the server stopped, then pulled elsewhere
    assert out.count('"title": "revised"') >= 2
    assert "-> branch production" in out
    # the capture: a first copy, then the changes only, seen in the diff and the list
    assert re.search(r"shop-live +mongodb://127.0.0.1:27099/shop +stopped", out), out[-2000:]
