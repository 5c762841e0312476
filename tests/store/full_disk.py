"""A small tmpfs to fill: the data directory of a full-disk test, always unmounted."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

#: Small enough to fill in a second, large enough for a fresh server and a few documents.
SIZE = "24m"


@contextlib.contextmanager
def tmpfs(path: Path, size: str = SIZE) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path``; in ``finally``, stop the embedded server
    living there (SIGKILL as a last resort) and unmount (lazily if it is still busy)."""
    from argonfs.store.db.embedded import server_info, stop_server

    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        info = server_info(path)
        try:
            stop_server(path, timeout=20)
        except Exception:
            if info is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info["pid"], signal.SIGKILL)
        finally:
            if subprocess.run(["umount", str(path)], check=False, capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(path: Path) -> Path:
    """Write ``path/ballast`` until the disk is full; return it (removing it frees the disk)."""
    ballast = path / "ballast"
    block = b"\0" * (1 << 20)
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    # the last partial block: fill what the 1 MiB writes left
    with open(ballast, "ab", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return ballast
