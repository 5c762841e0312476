"""A tiny HTTP server on a loopback port for fault tests: each request is answered by a
function the test gives (a scripted status, or a forward to a real emulator), and every
request is recorded, so a test can count what the client's retry machinery sent."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass(frozen=True)
class Request:
    method: str
    #: path and query, as sent
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeServer:
    url: str
    requests: list[Request]


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def forward(upstream: str, request: Request) -> Answer:
    """``request`` as ``upstream`` (``http://host:port``) answers it."""
    parsed = urlparse(upstream)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn.request(request.method, request.path, body=request.body if request.body or request.method in ("PUT", "POST") else None, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, body, {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP})
    finally:
        conn.close()


def json_error(status: int, message: str) -> Answer:
    """A Google JSON API error."""
    body = f'{{"error": {{"code": {status}, "message": "{message}", "errors": [{{"message": "{message}", "reason": "test"}}]}}}}'
    return Answer(status, body.encode(), {"Content-Type": "application/json"})


def xml_error(status: int, code: str, message: str) -> Answer:
    """An S3 error."""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>t</RequestId></Error>'
    return Answer(status, body.encode(), {"Content-Type": "application/xml"})


@contextmanager
def fake_server(answer: Callable[[Request], Answer]) -> Iterator[FakeServer]:
    """Serve ``answer`` on ``http://127.0.0.1:PORT`` until the block ends."""
    seen: list[Request] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, self.path, dict(self.headers.items()), body)
            with lock:
                seen.append(request)
            reply = answer(request)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if "Content-Length" not in reply.headers:  # a HEAD answer may name the length it would send
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that went away mid-answer is not the test's business

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield FakeServer(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
