"""The one error seam: ``fuse_op`` wraps every FUSE handler and turns argonfs errors into
errnos; ``_fail`` and ``_name`` are the errno replies handlers give themselves.  The
fs layer's logger lives here too, so every module logs as ``argonfs.fs``."""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pyfuse3

from argonfs.errors import ArgonError, InvalidDocument, NotFound
from argonfs.fs.limits import NAME_MAX

log = logging.getLogger("argonfs.fs")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def fuse_op(fn: F) -> F:
    """The one seam where errors become errnos.  pyfuse3 unmounts if anything but
    FUSEError escapes a handler, so everything else is logged and answered with EIO."""

    @functools.wraps(fn)
    async def wrapper(self: pyfuse3.Operations, *args: Any) -> Any:
        try:
            return await fn(self, *args)
        except pyfuse3.FUSEError:
            raise
        except NotFound as exc:
            log.debug("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(errno.ENOENT) from None
        except InvalidDocument as exc:  # already logged with its path where it was rejected
            log.debug("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except ArgonError as exc:
            log.warning("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        except Exception:
            log.exception("unexpected error in %s%r", fn.__name__, args)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper  # type: ignore[return-value]


def _fail(code: int) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(code)


def _name(raw: bytes) -> str:
    if len(raw) > NAME_MAX:
        raise _fail(errno.ENAMETOOLONG)
    return os.fsdecode(raw)
