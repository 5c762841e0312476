"""Running the console: the policy a bind address calls for, the listening socket, and
uvicorn.

On loopback (127.0.0.1, ::1, localhost) reads are open and writes need the token, and
the server answers only Host headers naming loopback.  On any other address every
request needs the token, and the start says so.  Blocking: ``run`` returns when uvicorn
stops (SIGINT or SIGTERM, after the requests in flight are answered).
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from starlette.applications import Starlette

from argonfs.console.app import create_app
from argonfs.console.auth import LOOPBACK_HOSTS, Policy, ensure_token, is_loopback
from argonfs.errors import ArgonError
from argonfs.store import Repository


@dataclass(frozen=True)
class Listening:
    """A bound socket, and what to tell the user about it."""

    sock: socket.socket
    url: str
    policy: Policy

    @property
    def notice(self) -> str:
        if self.policy.reads_need_token:
            return f"{self.url} is not a loopback address: every request needs Authorization: Bearer TOKEN ('argonfs serve token' prints it)"
        return "loopback only; writes need Authorization: Bearer TOKEN ('argonfs serve token' prints it)"


def listen(host: str, port: int, home: Path | None = None) -> Listening:
    """Bind ``host:port`` (port 0: any free port) and decide the policy; the token is
    made here on the first start."""
    token = ensure_token(home)
    loopback = is_loopback(host)
    policy = Policy(token, reads_need_token=not loopback, hosts=LOOPBACK_HOSTS if loopback else None)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ArgonError(f"cannot serve on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ArgonError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return Listening(sock, f"http://{shown}:{bound}/", policy)


def run(repo: Repository, listening: Listening, *, read_log: bool = False) -> None:
    """Serve ``repo`` on the bound socket until SIGINT or SIGTERM has stopped the server
    gracefully; then return (the process exits 0, as the mount daemon does)."""
    serve_app(create_app(repo, listening.policy, read_log=read_log), listening)


def serve_app(app: Starlette, listening: Listening) -> None:
    """Serve ``app`` (a repository's, or console/remote.py's over a remote) as ``run``."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.stopping = True  # answers that go on until told (the captures' event stream) end
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own raises the caught signal again after its graceful shutdown,
            # which would end the process by that signal; a stop that was asked for and
            # went well is a clean exit
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="off", server_header=False)
    server = Server(config)
    try:
        server.run(sockets=[listening.sock])
    finally:
        listening.sock.close()
