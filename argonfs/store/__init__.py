"""The versioned store over MongoDB (blocking pymongo code; no pyfuse3 here)."""

from argonfs.store.repository import Branch, Bundle, Document, ImportCounts, Repository, View
from argonfs.store.versions import Entry

__all__ = ["Branch", "Bundle", "Document", "Entry", "ImportCounts", "Repository", "View"]
