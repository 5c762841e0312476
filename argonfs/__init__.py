"""argonfs: git-like branches and immutable bundles of MongoDB documents, served as files.

The public Python API::

    import argonfs
    repo = argonfs.Repository.open()          # embedded server, repository "argonfs"
    repo.init()
    repo.put("main", "people", {"_id": "ada", "name": "Ada"})
    repo.create_branch("experiment")
    repo.create_bundle("main", "first snapshot", label="production")

Names are imported on first use, so ``import argonfs.cli`` (and ``argonfs --help``)
stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "codec": ("argonfs.codec", None),
    "render": ("argonfs.codec", "render"),
    "parse": ("argonfs.codec", "parse"),
    "id_to_filename": ("argonfs.codec", "id_to_filename"),
    **{
        name: ("argonfs.errors", name)
        for name in (
            "ArgonError",
            "AlreadyExists",
            "Conflict",
            "DocumentTooLarge",
            "InvalidDocument",
            "InvalidName",
            "NotFound",
            "Protected",
            "ReadOnly",
            "StoreUnavailable",
            "WrongFormat",
        )
    },
    **{name: ("argonfs.store", name) for name in ("Branch", "Bundle", "Document", "Entry", "ImportCounts", "Repository", "View")},
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'argonfs' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    return value if attr is None else getattr(value, attr)
