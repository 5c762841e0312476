"""Protected branches through the mount: every write path answers EROFS and the
previous version stays; a merge into the branch shows up in it."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.fs.conftest import assert_read_only


def write(path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def test_writes_into_a_protected_branch_are_erofs(repo, mnt) -> None:
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}"} for i in range(3)))
    repo.create_branch("feature")
    repo.put("feature", "papers", {"_id": 0, "title": "revised"})
    repo.protect_branch("main")
    base = mnt / "branches/main"
    before = (base / "papers/0.json").read_bytes()
    head = repo.head("main")

    assert_read_only(base, "papers/1.json")
    # refused at open, so a shell's redirection reports it
    shell = subprocess.run(["sh", "-c", f'echo \'{{"title": "shell"}}\' > {base}/papers/2.json'], capture_output=True, text=True, check=False)
    assert shell.returncode != 0 and "Read-only file system" in shell.stderr

    assert repo.head("main") == head
    assert (base / "papers/0.json").read_bytes() == before
    assert sorted(os.listdir(base / "papers")) == ["0.json", "1.json", "2.json"]
    assert json.loads((base / "papers/2.json").read_bytes())["title"] == "paper 2"

    # the feature branch is not protected, and a merge into main is allowed
    write(mnt / "branches/feature/papers/1.json", '{"title": "via the mount"}')
    repo.merge("feature", "main")
    # a change made behind the mount's back shows within about 1.25 s (docs/mount.md),
    # and a read never returns a version cut at the size the kernel cached earlier
    deadline = time.monotonic() + 30
    while (data := (base / "papers/1.json").read_bytes()) != repo.get("main", "papers", "1").rendered:
        json.loads(data)  # the old version, whole
        assert time.monotonic() < deadline, "the merge never showed through the mount"
        time.sleep(0.1)
    assert json.loads((base / "papers/1.json").read_bytes())["title"] == "via the mount"
    assert json.loads((base / "papers/0.json").read_bytes())["title"] == "revised"
