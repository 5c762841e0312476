"""Fixtures of the ML integrations' tests: a repository with a small collection, and
each tracker fully offline (an MLflow SQLite store, wandb's offline mode, the Hugging
Face cache in a temporary directory).  Every tracker library is a test dependency
(the ``ml`` extra), so nothing here is skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# No tracker or hub is ever reached: set before any of their libraries is imported.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")


def people(n: int, tag: str = "v1") -> list[dict]:
    return [{"_id": i, "name": f"person {i}", "tag": tag, "score": i / 10} for i in range(n)]


@pytest.fixture
def filled(repo):
    """The test repository with ``people`` (10 documents) imported into main."""
    repo.import_documents("main", "people", people(10))
    return repo


@pytest.fixture
def child_env(mongo_uri: str) -> dict[str, str]:
    """The environment for a child process: with a real mongod (which may need
    credentials) the URI comes from ARGONFS_MONGO_URI, as docs/ml.md says; on the
    in-process SecantusDB the child finds the server the snapshot recorded."""
    env = {k: v for k, v in os.environ.items() if k != "ARGONFS_MONGO_URI"}
    if os.environ.get("ARGONFS_TEST_MONGO_URI"):
        env["ARGONFS_MONGO_URI"] = mongo_uri
    return env


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite tracking store for the session (creating its tables takes seconds)."""
    import mlflow

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{path}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture
def experiment(mlflow_store: str, tmp_path: Path) -> str:
    """An experiment of this test's own (artifacts in tmp_path), made the active one."""
    import mlflow

    name = f"test-{uuid.uuid4().hex[:10]}"
    eid = mlflow.create_experiment(name, artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=eid)
    return eid
