"""A remote in an S3 bucket (or an S3-compatible server), through boto3.

Create-if-absent is a ``PutObject`` with ``If-None-Match: *``: S3 refuses it with 412
when the key exists, and answers 409 ``ConditionalRequestConflict`` while another
conditional write of the same key is in flight (then the key is looked at: if the other
writer finished, this one lost; if not, it tries again, a few times).  An object is
visible whole or not at all.

Temporary errors (connection failures, throttling, 5xx) are retried by botocore's
``standard`` retry mode; every request has a connect and a read timeout, so a thread
always comes back.  Anything else is answered at once, translated in ``_errors``.

Endpoint, region and credentials come from boto3's own configuration: the standard AWS
chain, and ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for an S3-compatible server
or an emulator.  One client per process and configuration, created on first use and
again in a forked child.  Blocking.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore import exceptions as bexc
from botocore.config import Config

from argonfs.errors import NotFound, RemoteUnavailable
from argonfs.remote.objects import Clients, ObjectInfo

log = logging.getLogger(__name__)

#: attempts per call, the first included (botocore's standard retry mode)
MAX_ATTEMPTS = 5
#: seconds to connect, and to wait for each read
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
#: how often a create that keeps meeting another writer's in-flight create is tried
CONFLICT_TRIES = 5

_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
}
_clients: Clients[Any] = Clients()


def _client(max_attempts: int) -> Any:
    """This process's S3 client for the current AWS_* configuration (created on first use)."""

    def make() -> Any:
        config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
        return boto3.session.Session().client("s3", config=config)

    return _clients.get((max_attempts, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))), make)


class S3Store:
    def __init__(self, url: str, bucket: str, prefix: str, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.url = url
        self.bucket = bucket
        self.prefix = prefix
        self.max_attempts = max_attempts

    def _client(self) -> Any:
        return _client(self.max_attempts)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_if_absent(self, key: str, data: bytes) -> bool:
        name = self._name(key)
        with self._errors(key):
            for attempt in range(1, CONFLICT_TRIES + 1):
                try:
                    self._client().put_object(Bucket=self.bucket, Key=name, Body=data, IfNoneMatch="*")
                    return True
                except bexc.ClientError as exc:
                    code = _code(exc)
                    if code not in ("PreconditionFailed", "ConditionalRequestConflict"):
                        raise
                    if code == "ConditionalRequestConflict" and not self._exists(name):
                        log.debug("%s: creating %s conflicts with another writer (attempt %d)", self.url, key, attempt)
                        time.sleep(0.05 * 2**attempt)
                        continue
                    if _retried(exc):
                        # An attempt whose answer was lost may have created it: ours if it holds our bytes.
                        return self.get(key) == data
                    return False
        raise RemoteUnavailable(f"remote {self.url}: creating {key} kept conflicting with another writer that never finished")

    def get(self, key: str) -> bytes:
        with self._errors(key):
            data: bytes = self._client().get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()
            return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        # At least one byte is asked for, so that a missing key says so even when length is 0.
        end = start + max(length, 1) - 1
        with self._errors(key):
            try:
                response = self._client().get_object(Bucket=self.bucket, Key=self._name(key), Range=f"bytes={start}-{end}")
            except bexc.ClientError as exc:
                if _code(exc) == "InvalidRange":
                    return b""  # start is at or after the end of the object
                raise
            data: bytes = response["Body"].read()
            if not response.get("ContentRange"):  # a server that ignores ranges sent it all
                data = data[start : start + length]
            return data[:length]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(None):
            pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._name(prefix))
            for page in pages:
                for obj in page.get("Contents", ()):
                    yield ObjectInfo(obj["Key"][strip:], obj["Size"], obj["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success.
        with self._errors(None):
            self._client().delete_object(Bucket=self.bucket, Key=self._name(key))

    def _exists(self, name: str) -> bool:
        try:
            self._client().head_object(Bucket=self.bucket, Key=name)
        except bexc.ClientError as exc:
            if _status(exc) == 404 and _code(exc) != "NoSuchBucket":
                return False
            raise
        return True

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """The one seam where client errors become argonfs errors.  ``key``: the object a
        missing key is about."""
        try:
            yield
        except bexc.ClientError as exc:
            code, status = _code(exc), _status(exc)
            message = _one_line(exc.response.get("Error", {}).get("Message") or "")
            if code == "NoSuchBucket":
                raise RemoteUnavailable(f"remote {self.url}: no such bucket {self.bucket}") from None
            if key is not None and (code in ("NoSuchKey", "NotFound") or status == 404):
                raise NotFound(f"remote {self.url}: no object {key}") from None
            if code in _DENIED or status in (401, 403):
                raise RemoteUnavailable(f"remote {self.url}: permission denied ({code}: {message})") from None
            if status is not None and status >= 500:
                raise RemoteUnavailable(f"remote {self.url}: unavailable, still failing after {self.max_attempts} attempts ({code}: {message})") from None
            raise RemoteUnavailable(f"remote {self.url}: {code}: {message}") from None
        except bexc.NoCredentialsError:
            raise RemoteUnavailable(
                f"remote {self.url}: no AWS credentials found (the standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE and ~/.aws, SSO, container or instance metadata)"
            ) from None
        except (bexc.PartialCredentialsError, bexc.CredentialRetrievalError) as exc:
            raise RemoteUnavailable(f"remote {self.url}: unusable AWS credentials ({_one_line(str(exc))})") from None
        except (bexc.ConnectionError, bexc.HTTPClientError) as exc:
            raise RemoteUnavailable(f"remote {self.url}: unreachable ({_one_line(str(exc))})") from None


def _code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: bexc.ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _retried(exc: bexc.ClientError) -> bool:
    return bool(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))


def _one_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 300 else line[:297] + "..."
