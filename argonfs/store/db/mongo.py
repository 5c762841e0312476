"""The MongoDB seam: connecting, and turning driver errors into argonfs errors.

Blocking.  One ``MongoClient`` per process and URI, created lazily (so after any fork),
with timeouts that make every call come back.

Every write waits until a majority of the replica set has it in its journal
(``w: majority, j: true``), and every read returns majority-committed data only
(``readConcern: majority``): what argonfs acknowledged or showed survives a crash or a
failover (docs/architecture.md, "Durability").
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeAlias, TypeVar

import pymongo
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from argonfs.errors import NoSpace, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

#: A BSON document as the driver returns it, and the driver's handles typed for it.
Doc: TypeAlias = dict[str, Any]
Client: TypeAlias = "MongoClient[Doc]"
Db: TypeAlias = "Database[Doc]"
Coll: TypeAlias = "Collection[Doc]"

#: Server selection / connect timeout in ms; ``ARGONFS_MONGO_TIMEOUT_MS`` overrides.
DEFAULT_TIMEOUT_MS = 5000
_AUTH_CODES = {13, 18}  # Unauthorized, AuthenticationFailed
_NO_MAJORITY_READS = 148  # ReadConcernMajorityNotEnabled
_INTERNAL_ERROR = 1  # what SecantusDB answers once WiredTiger panicked (a full disk among others)
_OUT_OF_DISK_SPACE = 14031  # mongod's OutOfDiskSpace

_clients: dict[tuple[str, int], Client] = {}
_clients_lock = threading.Lock()
_closing_at_exit = False
#: describe(uri) -> data directory, for the embedded servers this process uses
_embedded: dict[str, Path] = {}


def resolve_uri(uri: str | None) -> tuple[str, str]:
    """Return ``(uri, description)``; with no URI, start or find the embedded server."""
    if uri:
        return uri, "external"
    from argonfs.config import data_dir
    from argonfs.store.db.embedded import ensure_server

    home = data_dir()
    uri = ensure_server(home)
    _embedded[describe(uri)] = home
    return uri, f"embedded (data in {home})"


def _revive(where: str) -> str:
    """If ``where`` is an embedded server that is gone, start it again; say what happened.

    The server comes back on the same port, so this process's client reconnects by itself:
    the call that failed is reported, the next one works.
    """
    home = _embedded.get(where)
    if home is None:
        return ""
    from argonfs.store.db.embedded import ensure_server, server_running

    if server_running(home):
        return ""
    try:
        uri = ensure_server(home)
    except StoreUnavailable as exc:
        return f"; starting the embedded server again failed: {exc}"
    if describe(uri) != where:
        return f"; the embedded server was started again at a new address, {describe(uri)}: restart this process"
    log.warning("the embedded server in %s had stopped; started it again", home)
    return "; the embedded server had stopped and was started again, retry"


def client(uri: str) -> Client:
    """The process-wide client for ``uri`` (re-created in a forked child)."""
    global _closing_at_exit
    key = (uri, os.getpid())
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            c = new_client(uri)
            if not _closing_at_exit:
                atexit.register(close_clients)  # runs before pymongo's own hook, registered at import
                _closing_at_exit = True
            _clients[key] = c
        return c


def new_client(uri: str) -> Client:
    """A client with argonfs's settings (majority writes and reads on the primary, the
    timeouts), owned by the caller, who closes it: ``client`` keeps one per process for
    the repository, a capture opens its own for the source it reads."""
    timeout = int(os.environ.get("ARGONFS_MONGO_TIMEOUT_MS", DEFAULT_TIMEOUT_MS))
    return MongoClient(
        uri,
        w="majority",
        journal=True,
        readConcernLevel="majority",
        readPreference="primary",
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(60_000, timeout),
        appname="argonfs",
        # binary subtype 4 stays Binary (as codec.normalise decodes it): decoding
        # it to uuid.UUID would render it as a plain string
        uuidRepresentation="unspecified",
    )


def close_clients() -> None:
    """Close this process's clients; runs at exit.

    pymongo's exit hook joins its monitor threads, which sleep in uninterruptible 0.5 s
    steps: that was most of a CLI command's time.  Once the clients are closed those
    (daemon) threads have nothing left to do, so the hook is dropped.
    """
    with _clients_lock:
        for key, c in list(_clients.items()):
            if key[1] == os.getpid():  # a forked child leaves its parent's clients alone
                c.close()
                del _clients[key]
    from pymongo.synchronous import monitor

    hook = getattr(monitor, "_shutdown_resources", None)
    if hook is not None:
        atexit.unregister(hook)


def describe(uri: str) -> str:
    """The URI with any password removed, for messages."""
    try:
        parsed = pymongo.uri_parser.parse_uri(uri, validate=False)
        hosts = ",".join(f"{h}:{p}" for h, p in parsed["nodelist"])
        return f"mongodb://{hosts}"
    except Exception:  # a message helper must not fail
        return "the configured MongoDB server"


def _full_disk(where: str) -> NoSpace | None:
    """``NoSpace`` if ``where`` is an embedded server whose data directory's disk is full.

    A panicked server answers ``internal server error`` and then exits (embedded.py);
    a client cannot tell a full disk from that answer, but the disk itself can."""
    home = _embedded.get(where)
    if home is None:
        return None
    from argonfs.store.db.embedded import no_space

    return no_space(home)


def _stopped_after_panic(home: Path, wait: float = 5.0) -> bool:
    """Wait a little for an embedded server that answered an internal error to exit (as it
    does when WiredTiger panicked, embedded.py); True if it did, so it can be started again."""
    from argonfs.store.db.embedded import server_running

    deadline = time.monotonic() + wait
    while server_running(home):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def translate(exc: PyMongoError, where: str) -> Exception:
    code = exc.code if isinstance(exc, OperationFailure) else None
    if isinstance(exc, OperationFailure) and code == _OUT_OF_DISK_SPACE:
        return NoSpace(f"no space left on device: MongoDB at {where}: {(exc.details or {}).get('errmsg', exc)}")
    if isinstance(exc, ConnectionFailure) or code == _INTERNAL_ERROR:
        full = _full_disk(where)
        if full is not None:
            return full
    if code == _INTERNAL_ERROR:
        home = _embedded.get(where)
        if home is None:
            return StoreUnavailable(f"MongoDB at {where} answered 'internal server error'")
        try:
            revived = _revive(where) if _stopped_after_panic(home) else ""
        except NoSpace as full:
            return full
        return StoreUnavailable(f"MongoDB at {where} answered 'internal server error' (its log: {home / 'server.log'}){revived}")
    if isinstance(exc, ConnectionFailure):
        reason = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        try:
            revived = _revive(where)
        except NoSpace as full:
            return full
        return StoreUnavailable(f"cannot reach MongoDB at {where}: {reason}".split("\n")[0][:300] + revived)
    if isinstance(exc, OperationFailure) and exc.code in _AUTH_CODES:
        return StoreUnavailable(f"MongoDB at {where} refused authentication: {(exc.details or {}).get('errmsg', exc)}")
    if isinstance(exc, OperationFailure) and exc.code == _NO_MAJORITY_READS:
        return StoreUnavailable(
            f"MongoDB at {where} does not serve majority-committed reads (enableMajorityReadConcern is off); argonfs needs them to keep snapshots stable"
        )
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


class Located(Protocol):
    """What the decorators below need of a store object: where it talks to, for messages."""

    where: str


S = TypeVar("S", bound=Located)


def translating(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Decorate a store method so driver failures surface as ``StoreUnavailable``; the
    method keeps its signature for callers and type checkers."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with errors(self.where):
            return method(self, *args, **kwargs)

    return wrapper


def translating_iter(method: Callable[Concatenate[S, P], Iterator[T]]) -> Callable[Concatenate[S, P], Iterator[T]]:
    """``translating`` for a generator method: the whole iteration is translated."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        with errors(self.where):
            yield from method(self, *args, **kwargs)

    return wrapper
