"""MLflow: a snapshot logged as a run input and tags, rebuilt from the run in another
process through the registered dataset source, and the runs found from a bundle."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import pytest
from click.testing import CliRunner

from argonfs.cli import main
from argonfs.errors import NotFound
from argonfs.ml import pin
from argonfs.ml.mlflow import log_snapshot, runs_using, snapshot_of_run
from tests.ml.conftest import people

CHILD = r"""
import json, sys
import mlflow
run = mlflow.get_run(sys.argv[1])
[di] = run.inputs.dataset_inputs
source = mlflow.data.get_source(di)  # rebuilt through the mlflow.dataset_source entry point
snap = source.load()
print(json.dumps({"type": type(source).__name__, "digest": di.dataset.digest, "bundle": snap.bundle,
                  "docs": [d.doc for d in snap.documents("people")]}))
"""


def test_run_input_loads_the_exact_data_in_another_process_after_the_label_moves(filled, experiment, child_env) -> None:
    filled.create_bundle("main", "v1", label="production")
    snap = pin("production", repo=filled)
    with mlflow.start_run() as run:
        log_snapshot(snap)
    # the label moves on to other data after the run
    filled.import_documents("main", "people", people(10, tag="v2"))
    moved = filled.create_bundle("main", "v2", label="production")
    assert [d.doc["tag"] for d in filled.documents("production", "people")] == ["v2"] * 10

    out = subprocess.run([sys.executable, "-c", CHILD, run.info.run_id], env=child_env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["type"] == "ArgonfsDatasetSource"
    assert got["bundle"] == snap.bundle != moved.id
    assert got["docs"] == people(10)  # v1, what the run trained on
    assert snap.digest.split(":")[1].startswith(got["digest"])


def test_tags_and_snapshot_of_run(filled, experiment) -> None:
    train = pin("main", repo=filled)
    filled.import_documents("main", "held_out", [{"_id": "h1"}])
    held_out = pin("main", ["held_out"], repo=filled)
    with mlflow.start_run() as run:
        log_snapshot(train)
        log_snapshot(held_out, context="eval")
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["argonfs.bundle"] == train.bundle and tags["argonfs.digest"] == train.digest
    assert (tags["argonfs.count"], tags["argonfs.branch"], tags["argonfs.collections"], tags["argonfs.ref"]) == ("10", "main", "people", "main")
    assert tags["argonfs.eval.bundle"] == held_out.bundle and tags["argonfs.eval.collections"] == "held_out"
    assert snapshot_of_run(run.info.run_id) == train
    assert snapshot_of_run(run.info.run_id, context="eval") == held_out
    with pytest.raises(NotFound):
        snapshot_of_run(run.info.run_id, context="test")


def test_runs_using_a_bundle_api_and_cli(filled, experiment, mongo_uri, repo_name) -> None:
    a = pin("main", repo=filled)
    filled.put("main", "people", {"_id": 100})
    b = pin("main", repo=filled)
    filled.set_label("production", a.bundle)
    ids = {}
    for name, snap in (("a1", a), ("b1", b), ("a2", a)):
        with mlflow.start_run(run_name=name) as run:
            log_snapshot(snap)
        ids[name] = run.info.run_id
    with mlflow.start_run(run_name="eval-only") as run:
        log_snapshot(a, context="eval")
    ids["eval"] = run.info.run_id

    assert [r.info.run_id for r in runs_using(a.bundle)] == [ids["a2"], ids["a1"]]
    assert {r.info.run_id for r in runs_using(a.bundle, contexts=("training", "eval"))} == {ids["a1"], ids["a2"], ids["eval"]}
    assert [r.info.run_id for r in runs_using(b.bundle)] == [ids["b1"]]

    cli = CliRunner()
    args = ["--mongo", mongo_uri, "--repo", repo_name, "runs"]
    res = cli.invoke(main, [*args, "production", "--json"])  # a label: its bundle, a
    assert res.exit_code == 0, res.output
    assert [r["run_id"] for r in json.loads(res.output)] == [ids["a2"], ids["a1"]]
    res = cli.invoke(main, [*args, b.bundle])
    assert res.exit_code == 0 and ids["b1"] in res.output and ids["a1"] not in res.output
    res = cli.invoke(main, [*args, "main"])
    assert res.exit_code != 0 and "give a bundle id or a label" in res.output
