"""The versioned store over MongoDB (blocking pymongo code; no pyfuse3 here)."""

from argonfs.store.repository import Branch, Bundle, Change, Document, ImportCounts, Repository, View
from argonfs.store.versions import Entry

__all__ = ["Branch", "Bundle", "Change", "Document", "Entry", "ImportCounts", "Repository", "View"]
