"""The versioned store over MongoDB (blocking pymongo code; no pyfuse3 here)."""

from argonfs.store.engine.versions import Entry
from argonfs.store.repo.repository import Branch, Bundle, Change, Document, ImportCounts, Repository, View

__all__ = ["Branch", "Bundle", "Change", "Document", "Entry", "ImportCounts", "Repository", "View"]
