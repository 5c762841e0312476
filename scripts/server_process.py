"""A SecantusDB server in a process of its own, durable and syncing on commit, as the
embedded default runs it: for benchmarks whose client work must not share an
interpreter with the server's."""

from __future__ import annotations

import subprocess
import sys

_SERVER = r"""
import sys, time
from secantus import SecantusDBServer
s = SecantusDBServer(host="127.0.0.1", port=0, storage_path=sys.argv[1], durable=True, sync_on_commit=sys.argv[2] == "sync")
s.start()
print(s.uri, flush=True)
while True:
    time.sleep(1)
"""


def start(storage: str, *, sync: bool = True) -> tuple[subprocess.Popen[str], str]:
    """Start the server with its data in ``storage`` (``sync``: an fsync per commit);
    return the process and its URI."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, storage, "sync" if sync else "nosync"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()
