"""A remote in an Azure Blob Storage container, through azure-storage-blob.

Create-if-absent is a Put Blob with ``If-None-Match: *`` (``upload_blob(overwrite=False)``):
the service refuses it with 409 ``BlobAlreadyExists`` when the blob exists, and a block
blob is visible whole or not at all.  A create that was retried after a lost answer and
then refused was perhaps this call's own: it is ours if the blob holds our bytes.

Temporary errors (connection failures, 408, 5xx but 501 and 505) are retried by the
client's own storage retry policy (``ExponentialRetry``, with waits that start at
``backoff`` seconds and double), ``max_attempts`` attempts per request in all; every
request has a connect and a read timeout, so a thread always comes back.  Anything else
is answered at once, translated in ``_errors``.

Where the account is and who we are (``objects.azure_location`` parses the URL):
``az://CONTAINER/PREFIX`` takes its account from ``AZURE_STORAGE_CONNECTION_STRING``
(its ``BlobEndpoint``, e.g. Azurite's, or its account name) or ``AZURE_STORAGE_ACCOUNT``;
an account URL (``https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX``, or an
emulator's ``http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX``) names it itself.  Credentials,
first found: the connection string (for its own account), ``AZURE_STORAGE_KEY`` (the key
of ``AZURE_STORAGE_ACCOUNT``), ``AZURE_STORAGE_SAS_TOKEN``, ``DefaultAzureCredential``
when azure-identity is installed (imported only then), else anonymous (public
containers).  One client per process and configuration, created on first use and again
in a forked child.  Blocking.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core import exceptions as aexc
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from argonfs.errors import InvalidName, NotFound, RemoteUnavailable
from argonfs.remote.objects import Clients, ObjectInfo, azure_location

log = logging.getLogger(__name__)

#: attempts per request, the first included
MAX_ATTEMPTS = 6
#: seconds before the first retry; each later wait doubles (1, 2, 4, 8, 16: 31 s in all)
BACKOFF = 1.0
#: seconds to connect, and to wait for each read
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

_CONFIG_VARS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
)
_DENIED = {
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "AuthorizationProtocolMismatch",
    "AuthorizationSourceIPMismatch",
    "AuthorizationResourceTypeMismatch",
    "InsufficientAccountPermissions",
    "NoAuthenticationInformation",
    "InvalidAuthenticationInfo",
}
_clients: Clients[BlobServiceClient] = Clients()


class _Retry(ExponentialRetry):
    """The storage retry policy with waits of ``backoff * 2**n`` seconds (give or take a
    quarter), rather than its own 15 s + 3**n."""

    def __init__(self, max_attempts: int, backoff: float) -> None:
        retries = max(max_attempts - 1, 0)
        super().__init__(retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries)
        self.backoff = backoff

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        wait: float = self.backoff * 2 ** settings["count"]
        return wait * random.uniform(0.75, 1.25)


def _connection_string_parts(text: str) -> dict[str, str]:
    parts = {}
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if sep:
            parts[name.strip().lower()] = value.strip()
    return parts


def _default_credential() -> Any:
    """``DefaultAzureCredential`` if azure-identity is installed, else None (anonymous)."""
    if importlib.util.find_spec("azure.identity") is None:
        return None
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _make_client(account_url: str | None, max_attempts: int, backoff: float, url: str) -> BlobServiceClient:
    options: dict[str, Any] = {"retry_policy": _Retry(max_attempts, backoff), "connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    parts = _connection_string_parts(connection)
    if account_url is None:
        # az://: the account is the connection string's or AZURE_STORAGE_ACCOUNT's
        if connection:
            return BlobServiceClient.from_connection_string(connection, **options)
        account = os.environ.get("AZURE_STORAGE_ACCOUNT")
        if not account:
            raise RemoteUnavailable(
                f"remote {url}: no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT, or use the account URL"
            )
        account_url = f"https://{account}.blob.core.windows.net"
    account = account_url.rstrip("/").rsplit("/", 1)[-1] if _path_style(account_url) else account_url.split("//", 1)[-1].split(".", 1)[0]
    credential: Any
    if connection and parts.get("accountname") == account and parts.get("accountkey"):
        credential = {"account_name": account, "account_key": parts["accountkey"]}
    elif os.environ.get("AZURE_STORAGE_KEY") and os.environ.get("AZURE_STORAGE_ACCOUNT", account) == account:
        credential = {"account_name": account, "account_key": os.environ["AZURE_STORAGE_KEY"]}
    elif os.environ.get("AZURE_STORAGE_SAS_TOKEN"):
        credential = os.environ["AZURE_STORAGE_SAS_TOKEN"]
    else:
        credential = _default_credential()
    return BlobServiceClient(account_url, credential=credential, **options)


def _path_style(account_url: str) -> bool:
    """Whether the account is the URL's path (an emulator's) rather than its host's first label."""
    return bool(account_url.split("//", 1)[-1].partition("/")[2])


class AzureStore:
    def __init__(self, url: str, *, max_attempts: int = MAX_ATTEMPTS, backoff: float = BACKOFF) -> None:
        self.url = url
        location = azure_location(url)
        if location is None:
            raise InvalidName(f"{url!r}: not an Azure Blob Storage URL")
        self.account_url, self.container, self.prefix = location
        self.max_attempts = max_attempts
        self.backoff = backoff

    def _service(self) -> BlobServiceClient:
        key = (self.account_url, self.max_attempts, self.backoff, tuple(os.environ.get(name) for name in _CONFIG_VARS))
        return _clients.get(key, lambda: _make_client(self.account_url, self.max_attempts, self.backoff, self.url))

    def _container(self) -> ContainerClient:
        return self._service().get_container_client(self.container)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_if_absent(self, key: str, data: bytes) -> bool:
        retried: list[int] = []
        with self._errors(key):
            try:
                self._container().upload_blob(
                    self._name(key), data, length=len(data), overwrite=False, retry_hook=lambda **kw: retried.append(kw["retry_count"])
                )
            except aexc.ResourceExistsError as exc:
                if _code(exc) not in (None, "BlobAlreadyExists"):
                    raise
                if retried:
                    # An attempt whose answer was lost may have created it: ours if it holds our bytes.
                    log.debug("%s: %s existed after %d retried attempts", self.url, key, len(retried))
                    return self.get(key) == data
                return False
        return True

    def get(self, key: str) -> bytes:
        with self._errors(key):
            return self._container().download_blob(self._name(key)).readall()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        # At least one byte is asked for, so that a missing key says so even when length is 0.
        with self._errors(key):
            try:
                data = self._container().download_blob(self._name(key), offset=start, length=max(length, 1)).readall()
            except aexc.HttpResponseError as exc:
                if exc.status_code == 416:
                    return b""  # start is at or after the end of the object
                raise
            return data[:length]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(None):
            for blob in self._container().list_blobs(name_starts_with=self._name(prefix)):
                written = blob.last_modified
                yield ObjectInfo(blob.name[strip:], blob.size or 0, written.timestamp() if written else 0.0)

    def delete(self, key: str) -> None:
        with self._errors(None):
            try:
                self._container().delete_blob(self._name(key))
            except aexc.ResourceNotFoundError as exc:
                if _code(exc) == "ContainerNotFound":
                    raise

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """The one seam where client errors become argonfs errors.  ``key``: the object a
        404 may be about (None: a 404 can only mean the container)."""
        try:
            yield
        except aexc.ResourceNotFoundError as exc:
            if key is not None and _code(exc) != "ContainerNotFound":
                raise NotFound(f"remote {self.url}: no object {key}") from None
            raise RemoteUnavailable(f"remote {self.url}: no such container {self.container}") from None
        except aexc.ClientAuthenticationError as exc:
            if exc.status_code is None:  # no answer from the service: the credential itself failed
                if type(exc).__name__ == "CredentialUnavailableError":
                    raise RemoteUnavailable(
                        f"remote {self.url}: no Azure credentials found (AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY with AZURE_STORAGE_ACCOUNT, "
                        "AZURE_STORAGE_SAS_TOKEN, or DefaultAzureCredential's chain: environment, workload or managed identity, `az login`)"
                    ) from None
                raise RemoteUnavailable(f"remote {self.url}: credentials refused ({_one_line(str(exc))})") from None
            raise RemoteUnavailable(f"remote {self.url}: permission denied ({_reason(exc)})") from None
        except aexc.HttpResponseError as exc:
            status = exc.status_code
            if _code(exc) in _DENIED or status in (401, 403):
                raise RemoteUnavailable(f"remote {self.url}: permission denied ({_reason(exc)})") from None
            if status is not None and status >= 500:
                raise RemoteUnavailable(f"remote {self.url}: unavailable, still failing after {self.max_attempts} attempts ({_reason(exc)})") from None
            raise RemoteUnavailable(f"remote {self.url}: {_reason(exc)}") from None
        except (aexc.ServiceRequestError, aexc.ServiceResponseError) as exc:
            raise RemoteUnavailable(f"remote {self.url}: unreachable, still failing after {self.max_attempts} attempts ({_one_line(str(exc))})") from None
        except aexc.AzureError as exc:
            raise RemoteUnavailable(f"remote {self.url}: {type(exc).__name__}: {_one_line(str(exc))}") from None


def _reason(exc: aexc.HttpResponseError) -> str:
    """The service's error code and its own words (the first line of the message, which
    goes on with the request id, the time and the code)."""
    code = _code(exc) or exc.status_code
    message = _one_line(str(exc.message or exc.reason or ""))
    return f"{code}: {message}" if message else str(code)


def _one_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 300 else line[:297] + "..."


def _code(exc: aexc.AzureError) -> str | None:
    """The service's error code (``x-ms-error-code``), which the storage client sets on its errors."""
    code = getattr(exc, "error_code", None)
    if code is None:
        return None
    return str(getattr(code, "value", code))  # some are StorageErrorCode members, whose str() is their Python name
