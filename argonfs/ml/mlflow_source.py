"""The argonfs dataset source for MLflow, registered through the ``mlflow.dataset_source``
entry point (pyproject.toml): MLflow loads this module while importing ``mlflow.data``,
so it imports nothing of MLflow but the base class.

A run stores the source as JSON (``to_dict``: the snapshot's identity, no credentials);
``mlflow.data.get_source(dataset_input)`` rebuilds it in any process with argonfs
installed, and ``load()`` returns the ``Pin``, connected, whose
``documents(collection)`` are the exact data the run logged.
"""

from __future__ import annotations

from typing import Any

from mlflow.data.dataset_source import DatasetSource

from argonfs.ml.pinning import SCHEME, Pin

SOURCE_TYPE = "argonfs"


class ArgonfsDatasetSource(DatasetSource):
    """Where a run's data is: a bundle of an argonfs repository, with its digest."""

    def __init__(self, snapshot: Pin) -> None:
        self.snapshot = snapshot

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self) -> Pin:
        """The snapshot, connected (``Pin.repo``); its data is ``documents(c)``."""
        self.snapshot.repo().bundle(self.snapshot.bundle)  # NotFound now, not at first read
        return self.snapshot

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, Pin) or (isinstance(raw_source, str) and raw_source.startswith(f"{SCHEME}://"))

    @classmethod
    def _resolve(cls, raw_source: Any) -> ArgonfsDatasetSource:
        return cls(raw_source if isinstance(raw_source, Pin) else Pin.from_url(raw_source))

    def to_dict(self) -> dict[str, Any]:
        return self.snapshot.to_dict()

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> ArgonfsDatasetSource:
        return cls(Pin.from_dict(source_dict))
