"""Optional integrations for ML work: pin the exact data a run used, record it in a
tracker, load it in the loaders people already use (docs/ml.md).

    from argonfs.ml import pin
    snap = pin("production")                 # a label, a bundle, or a branch (bundled first)
    snap.bundle, snap.digest, snap.count

The integrations are modules of their own, each needing its extra and importing its
library only when imported itself:

    argonfs.ml.mlflow   log_snapshot, snapshot_of_run, runs_using   (argonfs[mlflow])
    argonfs.ml.wandb    log_snapshot, snapshot_of_artifact          (argonfs[wandb])
    argonfs.ml.torch    SnapshotDataset, SnapshotIterableDataset    (argonfs[torch])
    argonfs.ml.hf       to_dataset                                  (argonfs[hf])
"""

from __future__ import annotations

from argonfs.ml.snapshot import Snapshot, compute_digest, pin

__all__ = ["Snapshot", "compute_digest", "pin"]
