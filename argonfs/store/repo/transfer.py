"""Import from and export to directories of JSON files and MongoDB databases.

Directory layout (the same one ``export`` writes and the mount shows):

    SOURCE/<collection>.jsonl        one Extended JSON document per line
    SOURCE/<collection>.json         a JSON array of documents, or one document
    SOURCE/<collection>/<name>.json  one document per file; a missing ``_id`` is taken
                                     from the file name, a differing one is an error

Blocking.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from argonfs import codec
from argonfs.errors import AlreadyExists, InvalidDocument, NotFound


def is_mongo_uri(text: str) -> bool:
    return text.startswith(("mongodb://", "mongodb+srv://"))


@dataclass
class Source:
    """One collection's worth of documents to import."""

    collection: str
    origin: str
    count: int | None
    docs: Iterator[dict[str, Any]]
    #: what the source's files looked like before reading them (``fingerprint``); None
    #: for a MongoDB source and for files changed in the last RACY_NS
    fingerprint: str | None = None


#: files changed this recently are not fingerprinted: a change within the file system's
#: timestamp granularity after the read would leave the same sizes and times behind
RACY_NS = 2_000_000_000


def fingerprint(files: list[Path]) -> str | None:
    """A digest of the paths, sizes, times (modification and change, in ns), inodes and
    devices of these files, as rsync's quick check and git's index compare them; None
    if any changed within RACY_NS of now (or vanished)."""
    now = time.time_ns()
    digest = hashlib.blake2b(digest_size=16)
    parents: dict[Path, Path] = {}  # a directory's files resolve through it once
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if max(st.st_mtime_ns, st.st_ctime_ns) >= now - RACY_NS:
            return None
        parent = parents.get(path.parent)
        if parent is None:
            parent = parents[path.parent] = path.parent.resolve()
        digest.update(f"{parent / path.name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{st.st_dev}\n".encode())
    return digest.hexdigest()


def _doc_files(path: Path) -> list[Path]:
    return sorted(Path(e.path) for e in os.scandir(path) if e.is_file() and e.name.endswith(codec.SUFFIX))


def _where(path: Path, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _parse_at(data: bytes, where: str) -> dict[str, Any]:
    try:
        return codec.parse(data)
    except InvalidDocument as exc:
        raise InvalidDocument(f"{where}: {exc}") from None


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield _parse_at(line, _where(path, n))


def _json_file(path: Path) -> Iterator[dict[str, Any]]:
    data = path.read_bytes()
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"{path}: invalid JSON: {exc}") from None
    items = value if isinstance(value, list) else [value]
    for n, item in enumerate(items):
        yield _parse_at(orjson.dumps(item), f"{path}[{n}]")


def _doc_dir(path: Path) -> Iterator[dict[str, Any]]:
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if not entry.is_file() or not entry.name.endswith(codec.SUFFIX):
            continue
        file = Path(entry.path)
        doc = _parse_at(file.read_bytes(), str(file))
        stem = codec.filename_to_stem(entry.name)
        if "_id" not in doc:
            if stem is None or codec.is_hashed_stem(stem):
                raise InvalidDocument(f"{file}: no _id, and the file name is not a document name")
            doc = {"_id": codec.stem_to_id(stem), **doc}
        elif stem is not None:
            try:
                codec.check_stem(stem, doc["_id"])
            except InvalidDocument as exc:
                raise InvalidDocument(f"{file}: {exc}") from None
        yield doc


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def directory_sources(root: Path, only: str | None = None) -> list[Source]:
    """The collections a directory (or a single .json/.jsonl file) holds."""
    if root.is_file():
        name = only or root.name.rsplit(".", 1)[0]
        if root.suffix == ".jsonl":
            return [Source(name, str(root), _count_lines(root), _jsonl(root), fingerprint([root]))]
        return [Source(name, str(root), None, _json_file(root), fingerprint([root]))]
    if not root.is_dir():
        raise NotFound(f"no such file or directory: {root}")
    sources = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = _doc_files(path)
            sources.append(Source(entry.name, str(path), len(files), _doc_dir(path), fingerprint([path, *files])))
        elif entry.name.endswith(".jsonl"):
            sources.append(Source(entry.name[: -len(".jsonl")], str(path), _count_lines(path), _jsonl(path), fingerprint([path])))
        elif entry.name.endswith(".json"):
            sources.append(Source(entry.name[: -len(".json")], str(path), None, _json_file(path), fingerprint([path])))
    if only is not None:
        sources = [s for s in sources if s.collection == only]
        if not sources:
            raise NotFound(f"{root} holds no collection {only!r}")
    return sources


def mongo_sources(uri: str, only: str | None = None) -> list[Source]:
    """Collections of a MongoDB database: ``mongodb://host/db`` or ``mongodb://host/db.coll``."""
    from pymongo import uri_parser

    from argonfs.store.db.mongo import client, describe, errors

    parsed = uri_parser.parse_uri(uri)
    if not parsed.get("database"):
        raise InvalidDocument(f"{describe(uri)}: the URI must name a database (mongodb://host/DB or DB.COLLECTION)")
    db = client(uri)[parsed["database"]]
    with errors(describe(uri)):
        if parsed.get("collection"):
            names = [parsed["collection"]]
        else:
            names = sorted(n for n in db.list_collection_names() if not n.startswith("system."))
    target = None
    if only is not None:
        if parsed.get("collection"):
            target = only
        else:
            if only not in names:
                raise NotFound(f"{describe(uri)}/{parsed['database']} has no collection {only!r}")
            names = [only]

    def scan(name: str) -> Iterator[dict[str, Any]]:
        with errors(describe(uri)):
            yield from db[name].find().sort("_id", 1).batch_size(1000)

    sources = []
    for name in names:
        with errors(describe(uri)):
            count = db[name].estimated_document_count()
        sources.append(Source(target or name, f"{parsed['database']}.{name}", count, scan(name)))
    return sources


def sources(source: str, only: str | None = None) -> list[Source]:
    if is_mongo_uri(source):
        return mongo_sources(source, only)
    return directory_sources(Path(source), only)


# --------------------------------------------------------------------------- export


def export_to_directory(repo: Any, ref: str, dest: Path, *, force: bool = False) -> dict[str, int]:
    """Write ``dest/<collection>/<name>.json`` for every document of a ref."""
    view = repo.pin(ref)
    if dest.exists() and any(dest.iterdir()) and not force:
        raise AlreadyExists(f"{dest} is not empty; use --force to write into it anyway")
    counts: dict[str, int] = {}
    for collection in repo.collections(view):
        folder = dest / collection
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for entry, body in repo.stream_bodies(view, collection):  # bodies straight from packs, in listing order
            tmp = folder / (".tmp-" + entry.stem)
            tmp.write_bytes(body)
            os.replace(tmp, folder / (entry.stem + codec.SUFFIX))
            n += 1
        counts[collection] = n
    return counts


def export_to_mongo(repo: Any, ref: str, uri: str, *, force: bool = False, batch_size: int = 1000) -> dict[str, int]:
    """Materialise a ref into a MongoDB database (one collection per collection)."""
    from pymongo import uri_parser

    from argonfs.store.db.mongo import client, describe, errors

    parsed = uri_parser.parse_uri(uri)
    if not parsed.get("database"):
        raise InvalidDocument(f"{describe(uri)}: the URI must name a database, e.g. mongodb://host/exported")
    db = client(uri)[parsed["database"]]
    view = repo.pin(ref)
    names = repo.collections(view)
    counts: dict[str, int] = {}
    with errors(describe(uri)):
        busy = [n for n in names if db[n].estimated_document_count()]
        if busy and not force:
            raise AlreadyExists(f"{parsed['database']} already has documents in {', '.join(busy)}; use --force to replace those collections")
        for collection in names:
            db[collection].drop()
            db.create_collection(collection)
            batch: list[dict[str, Any]] = []
            n = 0
            for document in repo.documents(view, collection):
                batch.append(document.doc)
                if len(batch) >= batch_size:
                    db[collection].insert_many(batch, ordered=False)
                    n += len(batch)
                    batch = []
            if batch:
                db[collection].insert_many(batch, ordered=False)
                n += len(batch)
            counts[collection] = n
    return counts
