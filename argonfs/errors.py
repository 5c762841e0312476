"""One exception family for argonfs.

Every error a user can cause (or a server can cause) is an ``ArgonError``.  Each class
carries the errno a filesystem answers with and the exit code the CLI uses, so the
translation happens at exactly one seam in each front end.
"""

from __future__ import annotations

import errno


class ArgonError(Exception):
    """Base class: a problem with a clear one-line explanation."""

    errno: int = errno.EIO
    exit_code: int = 1


class NotFound(ArgonError):
    """A ref, branch, bundle, label, collection or document does not exist."""

    errno = errno.ENOENT
    exit_code = 2


class AlreadyExists(ArgonError):
    errno = errno.EEXIST
    exit_code = 3


class InvalidName(ArgonError):
    """A branch, label or collection name that argonfs does not accept."""

    errno = errno.EINVAL
    exit_code = 4


class InvalidDocument(ArgonError):
    """Bad JSON, not an object, mismatched ``_id``, or too large."""

    errno = errno.EINVAL
    exit_code = 4


class DocumentTooLarge(InvalidDocument):
    errno = errno.EFBIG


class ReadOnly(ArgonError):
    """An attempt to change a bundle or a time-travel view."""

    errno = errno.EROFS
    exit_code = 5


class Protected(ReadOnly):
    """A direct write to a protected branch (merge into it and revert it instead).

    A ``ReadOnly`` with the same errno and exit code, so both front ends' single error
    seams map it without knowing about protection."""


class Conflict(ArgonError):
    """The operation would break an invariant (e.g. deleting a branch others fork from)."""

    errno = errno.EBUSY
    exit_code = 6


class StoreUnavailable(ArgonError):
    """MongoDB cannot be reached, refused authentication, or timed out."""

    errno = errno.EIO
    exit_code = 7


class WrongFormat(ArgonError):
    """The repository was written in a format this argonfs does not read (older: run
    ``argonfs upgrade``; newer: install a newer argonfs)."""

    errno = errno.EPROTONOSUPPORT
    exit_code = 8


class RemoteUnavailable(ArgonError):
    """A remote (bucket or directory) cannot be reached, does not exist, or refused
    the credentials; the message names the remote."""

    errno = errno.EIO
    exit_code = 7


class Corrupt(ArgonError):
    """An object read from a remote does not match its hash or cannot be parsed: never
    served as data."""

    errno = errno.EIO
    exit_code = 9


class NoSpace(ArgonError):
    """The disk holding the data (the embedded server's data directory) is full: the
    write was not made, and freeing space is enough to go on (docs/cli.md, "A full disk")."""

    errno = errno.ENOSPC
    exit_code = 11
