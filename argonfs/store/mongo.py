"""The MongoDB seam: connecting, and turning driver errors into argonfs errors.

Blocking.  One ``MongoClient`` per process and URI, created lazily (so after any fork),
with timeouts that make every call come back.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pymongo
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from argonfs.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Server selection / connect timeout in ms; ``ARGONFS_MONGO_TIMEOUT_MS`` overrides.
DEFAULT_TIMEOUT_MS = 5000
_AUTH_CODES = {13, 18}  # Unauthorized, AuthenticationFailed

_clients: dict[tuple[str, int], MongoClient] = {}
_clients_lock = threading.Lock()


def resolve_uri(uri: str | None) -> tuple[str, str]:
    """Return ``(uri, description)``; with no URI, start or find the embedded server."""
    if uri:
        return uri, "external"
    from argonfs.config import data_dir
    from argonfs.store.embedded import ensure_server

    home = data_dir()
    return ensure_server(home), f"embedded (data in {home})"


def client(uri: str) -> MongoClient:
    """The process-wide client for ``uri`` (re-created in a forked child)."""
    key = (uri, os.getpid())
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            timeout = int(os.environ.get("ARGONFS_MONGO_TIMEOUT_MS", DEFAULT_TIMEOUT_MS))
            c = MongoClient(
                uri,
                w="majority",
                readPreference="primary",
                serverSelectionTimeoutMS=timeout,
                connectTimeoutMS=timeout,
                socketTimeoutMS=max(60_000, timeout),
                appname="argonfs",
                uuidRepresentation="standard",
            )
            _clients[key] = c
        return c


def describe(uri: str) -> str:
    """The URI with any password removed, for messages."""
    try:
        parsed = pymongo.uri_parser.parse_uri(uri, validate=False)
        hosts = ",".join(f"{h}:{p}" for h, p in parsed["nodelist"])
        return f"mongodb://{hosts}"
    except Exception:  # noqa: BLE001 - a message helper must not fail
        return "the configured MongoDB server"


def translate(exc: PyMongoError, where: str) -> Exception:
    if isinstance(exc, ConnectionFailure):
        reason = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        return StoreUnavailable(f"cannot reach MongoDB at {where}: {reason}".split("\n")[0][:300])
    if isinstance(exc, OperationFailure) and exc.code in _AUTH_CODES:
        return StoreUnavailable(f"MongoDB at {where} refused authentication: {exc.details.get('errmsg', exc)}")
    return exc


@contextlib.contextmanager
def errors(where: str) -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        new = translate(exc, where)
        if new is exc:
            raise
        raise new from None


def translating(method: Callable[..., T]) -> Callable[..., T]:
    """Decorate a store method so driver failures surface as ``StoreUnavailable``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        with errors(self.where):
            return method(self, *args, **kwargs)

    return wrapper


def translating_iter(method: Callable[..., Iterator[T]]) -> Callable[..., Iterator[T]]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Iterator[T]:
        with errors(self.where):
            yield from method(self, *args, **kwargs)

    return wrapper
