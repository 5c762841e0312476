"""The fsx-style checker (tests/fs/fsx.py) with fixed seeds: every operation on the mount
must give what the same operation gives on a local disk."""

from __future__ import annotations

import pytest

from tests.fs import fsx


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mount_matches_a_local_disk_operation_by_operation(repo, mnt, tmp_path, seed):
    coll = mnt / "branches/main/fsx"
    coll.mkdir()
    ref = tmp_path / "ref"
    ref.mkdir()
    checker = fsx.run(coll, ref, seed, 800)
    assert checker.ops >= 800
    assert "Traceback" not in mnt.log_text()
