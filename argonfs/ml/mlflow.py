"""MLflow: a snapshot as a run input and as run tags; from a run back to its data, and
from a bundle to the runs that used it.  Needs ``argonfs[mlflow]``.

The dataset source (mlflow_source.py) is what MLflow stores and rebuilds in any process
with argonfs installed; this module is the API over it.

Tags on the run, for the ``training`` context (another context ``C`` uses the prefix
``argonfs.C.``): ``argonfs.bundle``, ``argonfs.digest``, ``argonfs.repository``,
``argonfs.server``, ``argonfs.branch``, ``argonfs.seq``, ``argonfs.count``,
``argonfs.collections``, ``argonfs.ref`` and ``argonfs.label`` (when pinned by label).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import mlflow
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Run
from mlflow.store.entities.paged_list import PagedList
from mlflow.tracking import MlflowClient

from argonfs.errors import NotFound
from argonfs.ml.mlflow_source import SOURCE_TYPE, ArgonfsDatasetSource
from argonfs.ml.pinning import Pin

DEFAULT_CONTEXT = "training"
#: MLflow stores a dataset digest in 36 characters: the digest's hex, shortened
_MLFLOW_DIGEST_CHARS = 32


def dataset(snapshot: Pin, name: str | None = None) -> MetaDataset:
    """An MLflow dataset for ``snapshot``: its source, a name (default
    ``REPOSITORY@BUNDLE``) and the digest (shortened to what MLflow stores)."""
    digest = snapshot.digest.split(":")[-1][:_MLFLOW_DIGEST_CHARS]
    # MetaDataset declares ``profile`` abstract but is MLflow's documented metadata-only dataset
    return MetaDataset(ArgonfsDatasetSource(snapshot), name=name or f"{snapshot.repository}@{snapshot.bundle}", digest=digest)  # type: ignore[abstract]


def _prefix(context: str) -> str:
    return "argonfs." if context == DEFAULT_CONTEXT else f"argonfs.{context}."


def tags(snapshot: Pin, context: str = DEFAULT_CONTEXT) -> dict[str, str]:
    p = _prefix(context)
    out = {
        f"{p}bundle": snapshot.bundle,
        f"{p}digest": snapshot.digest,
        f"{p}repository": snapshot.repository,
        f"{p}server": snapshot.server or "embedded",
        f"{p}branch": snapshot.branch,
        f"{p}seq": str(snapshot.seq),
        f"{p}count": str(snapshot.count),
        f"{p}collections": ",".join(snapshot.collections),
        f"{p}ref": snapshot.ref,
    }
    if snapshot.label is not None:
        out[f"{p}label"] = snapshot.label
    return out


def log_snapshot(snapshot: Pin, *, context: str = DEFAULT_CONTEXT, name: str | None = None) -> MetaDataset:
    """Log ``snapshot`` to the active run (``mlflow.start_run``) as an input of
    ``context`` and as tags; returns the logged dataset."""
    ds = dataset(snapshot, name)
    mlflow.log_input(ds, context=context)
    mlflow.set_tags(tags(snapshot, context))
    return ds


def snapshot_of_run(run_id: str, *, context: str = DEFAULT_CONTEXT, client: MlflowClient | None = None) -> Pin:
    """The snapshot a run logged for ``context``, rebuilt from its dataset input through
    the registered source (``mlflow.data.get_source``), not connected until used."""
    run = (client or MlflowClient()).get_run(run_id)
    for di in run.inputs.dataset_inputs if run.inputs else []:
        if di.dataset.source_type != SOURCE_TYPE:
            continue
        if {t.key: t.value for t in di.tags}.get("mlflow.data.context", DEFAULT_CONTEXT) != context:
            continue
        source = mlflow.data.get_source(di)
        assert isinstance(source, ArgonfsDatasetSource), f"the {SOURCE_TYPE!r} dataset source is not registered: is argonfs installed?"
        return source.snapshot
    raise NotFound(f"run {run_id} logged no argonfs snapshot for context {context!r}")


def runs_using(bundle: str, *, contexts: Iterable[str] = (DEFAULT_CONTEXT,), client: MlflowClient | None = None) -> list[Run]:
    """Every run, in every active experiment, whose tags say it used ``bundle`` (for
    any of ``contexts``), newest first."""
    if "'" in bundle:
        return []  # no bundle id has one (and it would end the filter's string)
    mlc = client or MlflowClient()
    experiments = [e.experiment_id for e in _pages(partial(mlc.search_experiments, max_results=1000))]
    found: dict[str, Run] = {}
    for context in contexts:
        query = f"tags.`{_prefix(context)}bundle` = '{bundle}'"
        found.update((r.info.run_id, r) for r in _pages(partial(mlc.search_runs, experiments, query, max_results=1000)))
    return sorted(found.values(), key=lambda r: r.info.start_time or 0, reverse=True)


def _pages(fetch: Callable[..., PagedList[Any]]) -> Iterator[Any]:
    """Every item of a paged MLflow search (``fetch(page_token=...)``)."""
    token = None
    while True:
        page = fetch(page_token=token)
        yield from page
        token = page.token
        if not token:
            return
