"""A remote in a local (or network-mounted) directory: one file per object.

Create-if-absent is a hard link of a fully written, fsynced temporary file to the final
name: ``link`` fails when the name exists, so two writers never both succeed and a
reader never sees a partial object.  Blocking.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from argonfs.errors import NotFound, RemoteUnavailable
from argonfs.remote.objects import ObjectInfo

_TMP = ".tmp-"


class LocalStore:
    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.root = Path(path)

    def _path(self, key: str) -> Path:
        return self.root / key

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise RemoteUnavailable(f"remote {self.url}: no such directory {self.root}")

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check_root()
        path = self._path(key)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{_TMP}{secrets.token_hex(8)}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            _fsync_dir(path.parent)
            return True
        except PermissionError as exc:
            raise RemoteUnavailable(f"remote {self.url}: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            self._check_root()
            raise NotFound(f"remote {self.url}: no object {key}") from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(length)
        except (FileNotFoundError, NotADirectoryError):
            self._check_root()
            raise NotFound(f"remote {self.url}: no object {key}") from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._check_root()
        folder, _, _ = prefix.rpartition("/")
        start = self._path(folder) if folder else self.root
        if not start.is_dir():
            return
        found = []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(_TMP):
                    continue
                full = os.path.join(dirpath, name)
                key = os.path.relpath(full, self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        st = os.stat(full)
                        found.append(ObjectInfo(key, st.st_size, st.st_mtime))
        yield from sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
