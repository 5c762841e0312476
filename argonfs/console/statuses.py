"""Errors as HTTP answers: the one place an argonfs error class becomes a status.

Every error the API or the console answers has one JSON shape, ``{error, message,
detail}``: ``error`` a short stable name a script can test, ``message`` one line for a
person, ``detail`` more structure when there is some (FastAPI's validation errors), else
null.  A bug is logged with its traceback and answered as ``internal`` with status 500:
a traceback never leaves the server.
"""

from __future__ import annotations

from typing import Any

from argonfs import errors

#: argonfs error class -> (HTTP status, error name); a class not listed takes its nearest
#: listed base class's row (``DocumentTooLarge`` is an ``InvalidDocument``)
STATUSES: dict[type[errors.ArgonError], tuple[int, str]] = {
    errors.ArgonError: (500, "error"),
    errors.NotFound: (404, "not_found"),
    errors.AlreadyExists: (409, "already_exists"),
    errors.Conflict: (409, "conflict"),
    errors.InvalidName: (400, "invalid_name"),
    errors.InvalidDocument: (400, "invalid_document"),
    errors.DocumentTooLarge: (413, "document_too_large"),
    errors.ReadOnly: (403, "read_only"),
    errors.Protected: (403, "protected"),
    errors.StoreUnavailable: (503, "store_unavailable"),
    errors.RemoteUnavailable: (503, "remote_unavailable"),
    errors.WrongFormat: (503, "wrong_format"),
    errors.Corrupt: (502, "corrupt"),
    errors.NoSpace: (507, "no_space"),
}

#: names of the errors the HTTP layer itself answers (not from the store)
BAD_REQUEST = "bad_request"
INVALID_REQUEST = "invalid_request"
UNAUTHORIZED = "unauthorized"
FORBIDDEN_HOST = "forbidden_host"
INTERNAL = "internal"

#: the error names of plain HTTP statuses Starlette raises (an unknown path, a method)
HTTP_NAMES = {400: BAD_REQUEST, 401: UNAUTHORIZED, 404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


class RequestError(Exception):
    """A request the HTTP layer refuses before the store sees it: a bad cursor, a
    missing token.  Answered through the same shape as the store's errors."""

    def __init__(self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


def status_of(exc: errors.ArgonError) -> tuple[int, str]:
    """The HTTP status and error name of an argonfs error."""
    for cls in type(exc).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return STATUSES[errors.ArgonError]


def body(error: str, message: str, detail: Any = None) -> dict[str, Any]:
    """The one error shape."""
    return {"error": error, "message": message, "detail": detail}
