"""The notebook flow of docs/ml.md: branch from production, clean in the branch,
bundle, train, log, merge back; then the run still loads what it trained on."""

from __future__ import annotations

import mlflow
from torch.utils.data import DataLoader

from argonfs.ml import pin
from argonfs.ml.mlflow import log_snapshot, snapshot_of_run
from argonfs.ml.torch import SnapshotDataset


def test_branch_clean_bundle_train_log_merge(repo, experiment) -> None:
    repo.import_documents("main", "papers", [{"_id": i, "title": f"t{i}" if i % 3 else ""} for i in range(12)])
    repo.create_bundle("main", "raw", label="production")
    repo.create_branch("clean", "production")
    for d in repo.documents("clean", "papers"):
        if not d.doc.get("title"):
            repo.delete("clean", "papers", d.stem)
    repo.create_bundle("clean", "no untitled papers", label="candidate")
    snap = pin("candidate", repo=repo)
    with mlflow.start_run() as run:
        log_snapshot(snap)
        seen = [d["_id"] for batch in DataLoader(SnapshotDataset(snap, "papers"), batch_size=4, collate_fn=list) for d in batch]
        mlflow.log_metric("documents", len(seen))
    assert sorted(seen) == [i for i in range(12) if i % 3]
    assert repo.merge("clean", "main").deleted == 4
    assert len(list(repo.entries("main", "papers"))) == 8

    repo.put("main", "papers", {"_id": 100, "title": "later"})
    repo.set_label("candidate", repo.create_bundle("main", "later").id)
    back = snapshot_of_run(run.info.run_id)
    assert back == snap and sorted(d.doc["_id"] for d in back.documents("papers")) == sorted(seen)
    assert repr(repo).startswith(f"<argonfs.Repository {repo.db.name!r} at ")
