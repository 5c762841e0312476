"""The repository format: which version of docs/formats.md a database is written in.

``meta.format`` says it.  Opening a repository of another format gives one line: an
older one names ``argonfs upgrade``, a newer one asks for a newer argonfs.  ``upgrade``
runs the migrations from the repository's format to ours, one step at a time, each
step recorded in ``meta.upgrades``.

Format history (docs/formats.md, "Format versions"):

1. the first format.
2. control records besides commits (collection ``""``): ``protect``/``unprotect`` records
   and gc's ``abort`` records, which writers must honour; versions blanked by gc (``gc``
   field, no ``d``); ``deleted_branches``.  Nothing of format 1 changes meaning, so the
   migration only records the new format: but an argonfs that reads format 1 would
   ignore protection and take an abort record for a commit, which is why the format
   changes at all.
3. bulk writes: range records (collection ``""``, key ``~range``) reserve slots whose
   records are in ``bulk_versions``, found by name through ``bulk_listings`` and
   ``bulk_chunks``.  Format 2 holds none; the migration creates the index of
   ``bulk_listings``.  An argonfs that reads format 2 would not see imported documents.
4. packs: a bulk write's runs of puts are stored many records to a row of
   ``bulk_packs`` (store/engine/packs.py), listed by their range record (``pk``); only the
   other records of a bulk write are in ``bulk_versions``.  Format 3 holds no packs,
   so nothing is rewritten; an argonfs that reads format 3 would not find packed
   records.
5. kept bytes: a put written through the mount (or pulled from a bundle that kept them)
   with JSON other than its canonical rendering keeps those bytes (``w``, ``wz``;
   versions.kept_fields), and its ``z`` and ``h`` are theirs.  Format 4 keeps none, so
   nothing is rewritten; an argonfs that reads format 4 would serve the rendering with
   the kept bytes' size.

Blocking pymongo code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from argonfs.errors import WrongFormat
from argonfs.store.db.mongo import Db

log = logging.getLogger(__name__)

FORMAT = 5


def _to_2(db: Db) -> None:
    """Nothing to rewrite: format 1 holds no control records other than commits."""


def _to_3(db: Db) -> None:
    """Nothing to rewrite: format 2 holds no bulk writes."""
    from argonfs.store.engine import bulk

    bulk.create_indexes(db)


def _to_4(db: Db) -> None:
    """Nothing to rewrite: format 3's bulk records stay in ``bulk_versions``, and a
    range record without ``pk`` has no packs."""


def _to_5(db: Db) -> None:
    """Nothing to rewrite: a format 4 record keeps no bytes and reads as its rendering."""


#: migration from format n to n + 1
MIGRATIONS: dict[int, Callable[[Db], None]] = {1: _to_2, 2: _to_3, 3: _to_4, 4: _to_5}


def stored(db: Db) -> int | None:
    """The repository's format, None when there is no repository."""
    meta = db["meta"].find_one({"_id": "repo"}, {"format": 1})
    return None if meta is None else int(meta.get("format", 1))


def check(db: Db) -> dict[str, Any] | None:
    """Refuse a repository of another format, with one line saying what to do; return
    its meta record (None: no repository), read in the same query."""
    meta = db["meta"].find_one({"_id": "repo"})
    found = None if meta is None else int(meta.get("format", 1))
    if found is None or found == FORMAT:
        return meta
    if found < FORMAT:
        raise WrongFormat(
            f"repository {db.name!r} has format {found}, this argonfs uses format {FORMAT}: "
            f"run 'argonfs upgrade' (after stopping mounts and writers of older argonfs versions)"
        )
    raise WrongFormat(f"repository {db.name!r} has format {found}, newer than this argonfs reads ({FORMAT}): install a newer argonfs")


def upgrade(db: Db, author: str, *, dry_run: bool = False) -> list[int]:
    """Migrate to ``FORMAT``, one format at a time; return the formats passed through
    (empty when already current).  Each step is idempotent and the format is set after
    it, so an interrupted upgrade is finished by running it again."""
    found = stored(db)
    if found is None:
        raise WrongFormat(f"no argonfs repository named {db.name!r}; run 'argonfs init'")
    if found > FORMAT:
        check(db)
    steps = list(range(found + 1, FORMAT + 1))
    if dry_run:
        return steps
    for to in steps:
        MIGRATIONS[to - 1](db)
        step: dict[str, Any] = {"from": to - 1, "to": to, "author": author, "t": datetime.now(UTC).replace(tzinfo=None)}
        db["meta"].update_one({"_id": "repo", "format": to - 1}, {"$set": {"format": to}, "$push": {"upgrades": step}})
        log.info("upgraded repository %s from format %d to %d", db.name, to - 1, to)
    return steps
