"""The DVC recipe of docs/ml.md, run as written: real ``dvc repro`` with a local remote,
re-running exactly when the bundle id in params.yaml changes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.ml.conftest import people

ROOT = Path(__file__).resolve().parents[2]


def recipe() -> tuple[str, str]:
    """params.yaml and dvc.yaml, the first two yaml blocks of the DVC section."""
    text = (ROOT / "docs/ml.md").read_text()
    section = text.split("## DVC", 1)[1].split("\n## ", 1)[0]
    params, stages = re.findall(r"```yaml\n(.*?)```", section, re.S)[:2]
    return params, stages


def test_dvc_repro_follows_the_bundle(filled, tmp_path, mongo_uri, repo_name) -> None:
    params, stages = recipe()
    work, remote = tmp_path / "project", tmp_path / "remote"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ARGONFS_MONGO_URI": mongo_uri,
        "ARGONFS_REPO": repo_name,
        "DVC_NO_ANALYTICS": "1",
    }

    def dvc(*args: str) -> str:
        out = subprocess.run(["dvc", *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"dvc {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    v1 = filled.create_bundle("main", "v1", label="production")
    filled.import_documents("main", "people", people(10, tag="v2"))
    v2 = filled.create_bundle("main", "v2")

    dvc("init", "--no-scm", "-q")
    dvc("remote", "add", "-d", "local", str(remote))
    (work / "dvc.yaml").write_text(stages)
    (work / "params.yaml").write_text(params.replace("BUNDLE_ID", v1.id))
    exported = work / "data/argonfs/people/0.json"

    assert "Running stage 'export'" in dvc("repro")
    assert '"tag": "v1"' in exported.read_text()
    dvc("push")
    assert any(p.is_file() for p in remote.rglob("*"))

    filled.set_label("production", v2.id)  # a label moving changes nothing: the id is pinned
    assert "Running stage" not in dvc("repro")  # same bundle id: nothing to do
    (work / "params.yaml").write_text(params.replace("BUNDLE_ID", v2.id))
    assert "Running stage 'export'" in dvc("repro")
    assert '"tag": "v2"' in exported.read_text() and len(list(exported.parent.iterdir())) == 10
