"""argonfs: git-like branches and immutable bundles of MongoDB documents, served as files.

The public Python API::

    import argonfs
    repo = argonfs.Repository.open()          # embedded server, repository "argonfs"
    repo.init()
    repo.put("main", "people", {"_id": "ada", "name": "Ada"})
    repo.create_branch("experiment")
    repo.create_bundle("main", "first snapshot", label="production")
"""

from argonfs.codec import id_to_filename, parse, render
from argonfs.errors import (
    AlreadyExists,
    ArgonError,
    Conflict,
    DocumentTooLarge,
    InvalidDocument,
    InvalidName,
    NotFound,
    ReadOnly,
    StoreUnavailable,
)
from argonfs.store import Branch, Bundle, Document, Entry, ImportCounts, Repository, View

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "ArgonError",
    "Branch",
    "Bundle",
    "Conflict",
    "Document",
    "DocumentTooLarge",
    "Entry",
    "ImportCounts",
    "InvalidDocument",
    "InvalidName",
    "NotFound",
    "ReadOnly",
    "Repository",
    "StoreUnavailable",
    "View",
    "__version__",
    "id_to_filename",
    "parse",
    "render",
]
