"""W&B in offline mode: the snapshot's identity in the run config and as a dataset
artifact referencing it with its digest, written to the run's file for a later sync."""

from __future__ import annotations

import wandb

from argonfs.ml import pin
from argonfs.ml.wandb import log_snapshot, snapshot_of_artifact, snapshot_of_config
from tests.ml.conftest import people


def test_offline_run_records_config_and_artifact(filled, tmp_path, monkeypatch) -> None:
    for var in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))  # nothing written under ~
    filled.import_documents("main", "held_out", [{"_id": "h"}])
    snap = pin("main", repo=filled)
    held_out = pin(snap.bundle, ["held_out"], repo=filled)
    run = wandb.init(project="argonfs-test", dir=str(tmp_path), mode="offline", config={"lr": 0.1})
    try:
        assert run.offline
        art = log_snapshot(snap)
        log_snapshot(held_out, context="eval")
        config = dict(run.config)
    finally:
        run.finish()

    assert config["lr"] == 0.1 and config["argonfs"]["bundle"] == snap.bundle and config["argonfs"]["digest"] == snap.digest
    assert config["argonfs_eval"]["collections"] == ["held_out"]
    assert snapshot_of_config(config) == snap and snapshot_of_config(config, context="eval") == held_out

    assert art.type == "dataset" and art.name.startswith(f"argonfs-{snap.repository}-{snap.bundle}")
    refs = {name: entry.ref for name, entry in art.manifest.entries.items()}
    assert set(refs) == {"held_out", "people"}
    assert all(ref.startswith(f"argonfs://{snap.repository}/{snap.bundle}?") and ref.endswith(f"&digest={snap.digest}") for ref in refs.values())
    back = snapshot_of_artifact(art)
    assert back == snap and [d.doc for d in back.documents("people")] == people(10)

    # what a later `wandb sync` uploads: the run's file holds the config and the artifact
    [record] = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    data = record.read_bytes()
    assert refs["people"].encode() in data and snap.bundle.encode() in data and snap.digest.encode() in data
