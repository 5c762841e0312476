"""The ``argonfs`` console script: a short command runs in the warm command process.

Importing pymongo alone takes longer than a short command should (0.3 s on a loaded
2-core machine), so on the embedded default a short command (``SHORT`` below) is handed
to the data directory's warm process (argonfs/cli/warm.py): it has argonfs, click and
pymongo imported already and forks one process per command, which gets this process's
stdin, stdout and stderr (passed over a unix socket), its arguments, environment,
working directory and umask, and runs the command as ``argonfs.cli.main`` would here,
with its own MongoDB connection; this process waits and exits with its exit code.
Writes are acknowledged by the server as they are in-process (``w: majority, j: true``).

Anything else runs here as before, and so does a short command when there is no warm
process yet (which then starts one for the next commands), when it runs other code
(another interpreter, another ``sys.path``, files changed since it started), with
``ARGONFS_MONGO_URI`` set, or with ``ARGONFS_WARM=0``.  docs/cli.md, "Warm commands".

Only the standard library's light modules are imported here.
"""

from __future__ import annotations

import os
import sys

#: Commands the warm process runs: quick, no mount, no long-lived server.
SHORT = frozenset({"status", "cat", "ls", "put", "rm", "log", "diff", "branch", "bundle", "label", "collection"})
SOCKET = "warm.sock"


def home() -> str | None:
    """The data directory, as argonfs.config.data_dir finds it on Linux (None elsewhere)."""
    env = os.environ.get("ARGONFS_HOME")
    if env:
        return env
    if sys.platform != "linux":
        return None
    base = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser("~/.local/share")
    return os.path.join(base, "argonfs")


def eligible(argv: list[str]) -> bool:
    """True if ``argv`` is a short command on the embedded default, warm commands not turned off."""
    return bool(argv) and argv[0] in SHORT and not os.environ.get("ARGONFS_MONGO_URI") and os.environ.get("ARGONFS_WARM", "1") != "0"


def identity() -> dict[str, object]:
    """What the warm process must share with this one to run the same code (argonfs.cli.warm.identity)."""
    package = os.path.dirname(os.path.abspath(__file__))
    return {"executable": sys.executable, "path": sys.path[1:], "package": package}


def _read_line(sock: object, buf: bytearray) -> bytes | None:
    import socket

    assert isinstance(sock, socket.socket)
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return line


def run_warm(argv: list[str]) -> int | None:
    """Run ``argv`` in the warm process and return its exit code, or None if it did not run there."""
    where = home()
    if not eligible(argv) or where is None or None in (sys.stdin, sys.stdout, sys.stderr):
        return None
    import json
    import signal
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.path.join(where, SOCKET))
        umask = os.umask(0)
        os.umask(umask)
        request = {
            "argv": argv,
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "umask": umask,
            "identity": identity(),
            "streams": [[s.encoding, s.errors] if s is not None else None for s in (sys.stdin, sys.stdout, sys.stderr)],
        }
        socket.send_fds(sock, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        buf = bytearray()
        line = _read_line(sock, buf)
    except OSError:
        sock.close()
        return None
    answer = json.loads(line) if line else {}
    if "pid" not in answer:  # refused (another code version) or gone before it started: run here
        sock.close()
        return None
    pid = answer["pid"]

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    line = _read_line(sock, buf)
    sock.close()
    if line is None:
        sys.stderr.write("argonfs: error: the warm command process ended without an exit status\n")
        return 1
    code: int = json.loads(line)["exit"]
    return code


def main() -> None:
    """The console script's entry point (``argonfs``)."""
    argv = sys.argv[1:]
    code = run_warm(argv)
    if code is not None:
        sys.exit(code)
    from argonfs.cli import main as cli

    try:
        cli(prog_name="argonfs")
    except SystemExit:
        where = home()
        if eligible(argv) and where is not None and os.path.isdir(where):
            from argonfs.cli.warm import start

            start(where)
        raise


if __name__ == "__main__":
    main()
