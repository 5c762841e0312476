"""Optional integrations for ML work: pin the exact data a run used, record it in a
tracker, load it in the loaders people already use (docs/ml.md).

    from argonfs.ml import pin
    snap = pin("production")                 # a label, a bundle, or a branch (bundled first)
    snap.bundle, snap.digest, snap.count    # a Pin

The integrations are modules of their own, each needing its extra and importing its
library only when imported itself:

    argonfs.ml.mlflow   log_snapshot, snapshot_of_run, runs_using   (argonfs[mlflow])
    argonfs.ml.wandb    log_snapshot, snapshot_of_artifact          (argonfs[wandb])
    argonfs.ml.torch    SnapshotDataset, SnapshotIterableDataset    (argonfs[torch])
    argonfs.ml.hf       to_dataset                                  (argonfs[hf])
"""

from __future__ import annotations

import warnings
from typing import Any

from argonfs.ml.pinning import Pin, compute_digest, pin

__all__ = ["Pin", "compute_digest", "pin"]


def __getattr__(name: str) -> Any:
    """``argonfs.ml.Snapshot``, the old name of ``Pin`` (renamed so that "snapshot" means
    one thing: what a mount serves, argonfs.snapshot), still works with a warning."""
    if name == "Snapshot":
        warnings.warn("argonfs.ml.Snapshot is now argonfs.ml.Pin", DeprecationWarning, stacklevel=2)
        return Pin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
