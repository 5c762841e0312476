"""A remote in a Google Cloud Storage bucket, through google-cloud-storage.

Create-if-absent is an upload with ``ifGenerationMatch=0``: GCS commits it only if no
live object has the name, and an object is visible whole or not at all.  That
precondition also makes the upload idempotent, so it is retried like a read.

Temporary errors (connection failures, 408, 429, 5xx) are retried by the client's own
machinery (google.api_core ``Retry`` with the predicate google-cloud-storage builds
``DEFAULT_RETRY`` from), capped at ``retry_timeout`` seconds per call; every HTTP
request has a connect and a read timeout, so a thread always comes back.  Anything
else is answered at once, translated in ``_errors``.

Endpoint and credentials: the client honours ``STORAGE_EMULATOR_HOST`` itself; with it
set no credentials are needed (anonymous, project from ``GOOGLE_CLOUD_PROJECT``),
otherwise the standard Application Default Credentials chain.  One client per process
and configuration, created on first use and again in a forked child.  Blocking.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import _should_retry  # the predicate of storage's DEFAULT_RETRY

from argonfs.errors import NotFound, RemoteUnavailable
from argonfs.remote.objects import Clients, ObjectInfo

log = logging.getLogger(__name__)

#: (connect, read) seconds for every HTTP request
TIMEOUT = (10.0, 60.0)
#: how long the client may go on retrying temporary errors, per call
RETRY_TIMEOUT = 60.0

_CONFIG_VARS = ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS")
_clients: Clients[storage.Client] = Clients()


def _make_client() -> storage.Client:
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or "argonfs"
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client()


def _client() -> storage.Client:
    """This process's client for the current configuration (created on first use)."""
    return _clients.get(tuple(os.environ.get(name) for name in _CONFIG_VARS), _make_client)


class GcsStore:
    def __init__(self, url: str, bucket: str, prefix: str, *, retry_timeout: float = RETRY_TIMEOUT) -> None:
        self.url = url
        self.bucket = bucket
        self.prefix = prefix
        self.retry_timeout = retry_timeout

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _blob(self, key: str) -> storage.Blob:
        return _client().bucket(self.bucket).blob(self._name(key))

    def _retry(self, on_error: Callable[[Exception], object] | None = None) -> Retry:
        return Retry(predicate=_should_retry, timeout=self.retry_timeout, on_error=on_error)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        retried: list[Exception] = []
        with self._errors(key):
            blob = self._blob(key)
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/octet-stream",
                    if_generation_match=0,
                    retry=self._retry(on_error=retried.append),
                    timeout=TIMEOUT,
                )
            except gexc.PreconditionFailed:
                if retried:
                    # An attempt whose answer was lost may have created it: ours if it holds our bytes.
                    log.debug("%s: %s existed after %d retried attempts", self.url, key, len(retried))
                    return self.get(key) == data
                return False
        return True

    def get(self, key: str) -> bytes:
        with self._errors(key):
            data: bytes = self._blob(key).download_as_bytes(retry=self._retry(), timeout=TIMEOUT)
            return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        # At least one byte is asked for, so that a missing key says so even when length is 0.
        end = start + max(length, 1) - 1
        with self._errors(key):
            try:
                data: bytes = self._blob(key).download_as_bytes(start=start, end=end, retry=self._retry(), timeout=TIMEOUT)
            except gexc.RequestRangeNotSatisfiable:
                return b""  # start is at or after the end of the object
            return data[:length]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(None):
            blobs = _client().list_blobs(self.bucket, prefix=self._name(prefix), retry=self._retry(), timeout=TIMEOUT)
            for blob in blobs:
                written = blob.updated or blob.time_created
                yield ObjectInfo(blob.name[strip:], blob.size or 0, written.timestamp() if written else 0.0)

    def delete(self, key: str) -> None:
        with self._errors(None):
            try:
                self._blob(key).delete(retry=self._retry(), timeout=TIMEOUT)
            except gexc.NotFound:
                if not self._bucket_exists():
                    raise

    def _bucket_exists(self) -> bool:
        """Whether a 404 was about the object rather than the bucket (asked only after a
        404).  A caller allowed objects but not bucket metadata cannot tell: yes."""
        with self._errors(None):
            try:
                exists: bool = _client().bucket(self.bucket).exists(retry=self._retry(), timeout=TIMEOUT)
            except (gexc.Forbidden, gexc.Unauthorized):
                return True
            return exists

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """The one seam where client errors become argonfs errors.  ``key``: the object a
        404 may be about (None: a 404 can only mean the bucket)."""
        try:
            yield
        except gexc.NotFound:
            if key is not None and self._bucket_exists():
                raise NotFound(f"remote {self.url}: no object {key}") from None
            raise RemoteUnavailable(f"remote {self.url}: no such bucket {self.bucket}") from None
        except (gexc.Unauthorized, gexc.Forbidden) as exc:
            raise RemoteUnavailable(f"remote {self.url}: permission denied ({_reason(exc)})") from None
        except gexc.RetryError as exc:
            cause = exc.cause if exc.cause is not None else exc
            raise RemoteUnavailable(f"remote {self.url}: unreachable, still failing after retrying for {self.retry_timeout:g}s ({_describe(cause)})") from None
        except gexc.GoogleAPICallError as exc:
            raise RemoteUnavailable(f"remote {self.url}: {_reason(exc)}") from None
        except auth_exceptions.InvalidOperation as exc:  # a 401 answered to the anonymous credentials used with an emulator
            raise RemoteUnavailable(f"remote {self.url}: permission denied (anonymous access refused: {_one_line(str(exc))})") from None
        except auth_exceptions.DefaultCredentialsError:
            raise RemoteUnavailable(
                f"remote {self.url}: no Google Cloud credentials found (run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS)"
            ) from None
        except auth_exceptions.GoogleAuthError as exc:
            raise RemoteUnavailable(f"remote {self.url}: credentials refused ({_describe(exc)})") from None
        except OSError as exc:  # includes requests' errors: a connection that failed without being retried
            raise RemoteUnavailable(f"remote {self.url}: unreachable ({_describe(exc)})") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, gexc.GoogleAPICallError):
        return _reason(exc)
    response = getattr(exc, "response", None)  # the media layer's InvalidResponse
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"{status} {_one_line(_server_message(response) or str(exc))}"
    return f"{type(exc).__name__}: {_one_line(str(exc))}"


def _reason(exc: gexc.GoogleAPICallError) -> str:
    """The status and the server's own words (an upload's or download's error carries the
    request and the whole body in its message: the JSON error's message is enough)."""
    return f"{exc.code} {_one_line(_server_message(exc.response) or exc.message)}"


def _server_message(response: object) -> str | None:
    try:
        return str(response.json()["error"]["message"])  # type: ignore[attr-defined]
    except (AttributeError, TypeError, KeyError, ValueError):
        return None


def _one_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 300 else line[:297] + "..."
