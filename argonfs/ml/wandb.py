"""Weights & Biases: a snapshot's identity in a run's config and as a dataset artifact
that references it.  Needs ``argonfs[wandb]``; works in offline mode.

The config gets ``argonfs`` (or ``argonfs_<context>``): the snapshot's identity
(``Pin.to_dict``).  The artifact, of type ``dataset`` and named
``argonfs-REPOSITORY-BUNDLE``, holds one reference per collection, ``argonfs://...``
URLs carrying the digest (W&B stores references of schemes it does not know as they
are, without downloading anything), and the identity as metadata.  An online run
*uses* it (an input of the run); an offline run cannot use artifacts, so it logs it,
and ``wandb sync`` uploads it later.
"""

from __future__ import annotations

import re
from typing import Any

import wandb

from argonfs.ml.pinning import SCHEME, Pin

DEFAULT_CONTEXT = "training"


def artifact(snapshot: Pin) -> wandb.Artifact:
    """The dataset artifact of ``snapshot``: references and identity, no data."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"argonfs-{snapshot.repository}-{snapshot.bundle}")
    art = wandb.Artifact(
        name, type="dataset", description=f"argonfs bundle {snapshot.bundle} ({snapshot.count} documents)", metadata={"argonfs": snapshot.to_dict()}
    )
    for collection in snapshot.collections:
        url = f"{SCHEME}://{snapshot.repository}/{snapshot.bundle}?collections={collection}&digest={snapshot.digest}"
        art.add_reference(url, name=collection, checksum=False)
    return art


def log_snapshot(snapshot: Pin, run: Any = None, *, context: str = DEFAULT_CONTEXT) -> wandb.Artifact:
    """Record ``snapshot`` in ``run`` (default: ``wandb.run``): its identity in the
    config, and its artifact used (online) or logged (offline).  Returns the artifact."""
    run = run or wandb.run
    if run is None:
        raise RuntimeError("no active W&B run: call wandb.init() first")
    key = "argonfs" if context == DEFAULT_CONTEXT else f"argonfs_{context}"
    run.config.update({key: snapshot.to_dict()}, allow_val_change=True)
    art = artifact(snapshot)
    if run.offline:
        run.log_artifact(art, aliases=[context])
    else:
        run.use_artifact(art, aliases=[context])
    return art


def snapshot_of_artifact(art: wandb.Artifact) -> Pin:
    """The snapshot an artifact made by ``artifact`` describes (not connected until used)."""
    identity = (art.metadata or {}).get("argonfs")
    if identity is None:
        raise ValueError(f"artifact {art.name!r} was not made by argonfs.ml.wandb")
    return Pin.from_dict(identity)


def snapshot_of_config(config: Any, *, context: str = DEFAULT_CONTEXT) -> Pin:
    """The snapshot recorded in a run's config (``run.config`` or the dict)."""
    key = "argonfs" if context == DEFAULT_CONTEXT else f"argonfs_{context}"
    identity = dict(config).get(key)
    if identity is None:
        raise ValueError(f"the run's config has no {key!r}")
    return Pin.from_dict(dict(identity))
