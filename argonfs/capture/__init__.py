"""Live capture: a branch kept in step with a MongoDB database through its change stream
(docs/capture.md).  Above the store: it uses only ``Repository``'s public API, plus the
``captures`` collection of its own (state.py)."""

from __future__ import annotations

from typing import Any

from argonfs.capture.batches import Options, Stopped
from argonfs.capture.events import SourceSpec, apply_update, parse_source
from argonfs.capture.run import Capture
from argonfs.capture.state import COLLECTION, running, status


def records(db: Any) -> list[dict[str, Any]]:
    """Every capture's record (no lease ids), by branch."""
    from argonfs.capture import state

    return state.records(db[COLLECTION])


__all__ = ["Capture", "Options", "SourceSpec", "Stopped", "apply_update", "parse_source", "records", "running", "status"]
