"""The one small object-store interface remotes are built on, and how a URL picks a
backend.

``ObjectStore`` is all the bundle format (remote/format.py) needs of a bucket: create an
object only if it is absent, read it whole or a byte range of it, list by prefix, and
delete.  Objects are never overwritten, so there is no "put" that replaces: every key
is written once (content-addressed objects, descriptors, label slots), which is what
makes a push atomic and label history lossless without bucket versioning.

Backends: remote/local.py (a directory), remote/gcs.py (google-cloud-storage),
remote/s3.py (boto3), remote/azure.py (azure-storage-blob).  Each raises ``NotFound`` for a missing key and
``RemoteUnavailable`` (one line naming the remote) for a missing bucket, refused
credentials or a server that stays down after the client's own retries.  Blocking.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlparse

from argonfs.errors import InvalidName


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    #: when the object was written, in seconds since the epoch
    mtime: float


class ObjectStore(Protocol):
    #: the remote's URL as the user gave it (no credentials), for messages
    url: str

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` holding ``data`` unless it exists; True if this call created it.
        Atomic: readers see the whole object or none."""
        ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer only at the end of the object)."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...


C = TypeVar("C")


class Clients(Generic[C]):
    """One client per process and configuration, for a backend's module: created on first
    use, and forgotten in a forked child (the parent's lock may be held by a thread that
    does not exist there, and its clients' connections belong to the parent)."""

    def __init__(self) -> None:
        self._clients: dict[Hashable, C] = {}
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._clients.clear()

    def get(self, key: Hashable, make: Callable[[], C]) -> C:
        key = (os.getpid(), key)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make()
            return client


#: URL scheme -> the backend that serves it, as "module:class": imported on first use, so
#: a directory remote never imports google-cloud-storage or boto3, and no backend's
#: import of this module (for ``ObjectInfo`` and ``Clients``) comes back to it
BACKENDS = {
    "gs": "argonfs.remote.gcs:GcsStore",
    "s3": "argonfs.remote.s3:S3Store",
    "az": "argonfs.remote.azure:AzureStore",
    "https": "argonfs.remote.azure:AzureStore",
    "http": "argonfs.remote.azure:AzureStore",
    "file": "argonfs.remote.local:LocalStore",
    "": "argonfs.remote.local:LocalStore",
}
_BAD_URL = (
    "a remote URL is gs://BUCKET[/PREFIX], s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], "
    "https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX], file:///PATH or a path"
)


def azure_location(url: str) -> tuple[str | None, str, str] | None:
    """(account URL, container, prefix) of an Azure Blob Storage URL, else None (no I/O).

    ``az://CONTAINER[/PREFIX]``: no account URL (the environment names the account).
    ``https://ACCOUNT.blob.HOST/CONTAINER[/PREFIX]``: the account is the host's first label.
    Any other ``http(s)://HOST[:PORT]/ACCOUNT/CONTAINER[/PREFIX]`` is path-style, as an
    emulator (Azurite) or Azure Stack serves it: the account is the first path segment."""
    parsed = urlparse(url)
    segments = [s for s in parsed.path.split("/") if s]
    if parsed.scheme == "az":
        return (None, parsed.netloc, "/".join(segments)) if parsed.netloc else None
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return None
    base = f"{parsed.scheme}://{parsed.netloc}"
    if ".blob." not in (parsed.hostname or ""):
        if not segments:
            return None
        base, segments = f"{base}/{segments[0]}", segments[1:]
    if not segments:
        return None
    return base, segments[0], "/".join(segments[1:])


def _backend(scheme: str) -> Callable[..., ObjectStore]:
    """The class of the backend for ``scheme`` (a key of ``BACKENDS``), its module imported."""
    module, _, name = BACKENDS[scheme].partition(":")
    backend: Callable[..., ObjectStore] = getattr(importlib.import_module(module), name)
    return backend


def open_store(url: str) -> ObjectStore:
    """The backend a remote URL names: ``gs://bucket[/prefix]``, ``s3://bucket[/prefix]``,
    ``az://container[/prefix]`` or an Azure account URL, ``file:///path`` or a plain path."""
    parsed = urlparse(url)
    if parsed.scheme in ("az", "http", "https"):
        check_url(url)
        return _backend(parsed.scheme)(url)
    if parsed.scheme in ("gs", "s3"):
        return _backend(parsed.scheme)(url, parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme in ("file", ""):
        path = parsed.path if parsed.scheme == "file" else url
        if not path:
            raise InvalidName(f"{url!r}: a remote URL needs a path")
        return _backend(parsed.scheme)(url, path)
    raise InvalidName(f"{url!r}: {_BAD_URL}")


def check_url(url: str) -> str:
    """``url`` if it names a backend (no I/O), else ``InvalidName``."""
    parsed = urlparse(url)
    if parsed.scheme in ("gs", "s3") and not parsed.netloc:
        raise InvalidName(f"{url!r}: no bucket")
    if parsed.scheme in ("az", "http", "https") and azure_location(url) is None:
        raise InvalidName(f"{url!r}: no container (az://CONTAINER[/PREFIX], https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX])")
    if parsed.scheme not in BACKENDS:
        raise InvalidName(f"{url!r}: {_BAD_URL}")
    return url
