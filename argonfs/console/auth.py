"""Who may call the console: the token kept in the data directory, and the checks of a
request.

The token is made at the first start (or by ``argonfs serve token``) and kept in
``<data dir>/console/token.json``, 0600 in a 0700 directory (``argonfs.config``'s private
files): ``{"name": ..., "token": ...}``.  Its name is the author of every write made with
it (the default author of whoever created it).  A request proves it holds the token with
``Authorization: Bearer TOKEN``; every write needs that, and so does every request of a
server bound to an address other than loopback.

A browser gives the token once, on the console's login page, and holds a session cookie
from then on (``SESSION``: a MAC of the token, HttpOnly, SameSite=Strict, so no other
site's page sends it).  The cookie stands for the token in every read, the console's
live updates included, and in the console's own form posts, each of which must also
carry the form's CSRF field (another MAC of the token, in every page with a form) and,
when the browser sends one, an Origin naming this server.  The API's writes take the
Authorization header only: a cookie alone never writes through /api.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from argonfs import config
from argonfs.console.statuses import FORBIDDEN_HOST, UNAUTHORIZED, RequestError
from argonfs.errors import ArgonError
from argonfs.store import Repository

FILE = "token.json"


@dataclass(frozen=True)
class Token:
    name: str
    secret: str


def token_path(home: Path | None = None) -> Path:
    return (home or config.data_dir()) / "console" / FILE


def load_token(home: Path | None = None) -> Token | None:
    """The kept token, or None when there is none yet."""
    path = token_path(home)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ArgonError(f"{path} is not a token file ({exc}); delete it and start again for a new token") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("token"), str) or not data["token"]:
        raise ArgonError(f"{path} is not a token file; delete it and start again for a new token")
    return Token(data["name"], data["token"])


def ensure_token(home: Path | None = None) -> Token:
    """The kept token, made (named after the default author) if there is none."""
    token = load_token(home)
    if token is not None:
        return token
    path = token_path(home)
    config.private_dir(path.parent)
    token = Token(config.default_author(), secrets.token_urlsafe(32))
    config.write_private(path, json.dumps({"name": token.name, "token": token.secret}).encode() + b"\n", sync=True)
    return token


#: the cookie of a browser that gave the token on the login page
SESSION = "argonfs_session"
#: the one page open to a request without the token on a server off loopback
LOGIN = "/login"


def _mac(token: Token, purpose: str) -> str:
    return hmac.new(token.secret.encode(), b"argonfs console " + purpose.encode(), hashlib.sha256).hexdigest()


def session_value(token: Token) -> str:
    """The session cookie's value: it proves the token was given, and is not the token."""
    return _mac(token, "session")


def csrf_value(token: Token) -> str:
    """The CSRF field of the console's forms (a page of this server shows it; another
    site's page cannot read it)."""
    return _mac(token, "csrf")


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, it is not known to be loopback


#: the Host headers a loopback server answers (others are a DNS-rebinding page's)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def host_of(header: str) -> str:
    """The host of a Host header, without its port."""
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.partition(":")[0]


@dataclass(frozen=True)
class Policy:
    """What a server asks of a request: the token, whether reads need it too, and
    which Host headers it answers (None: any)."""

    token: Token
    reads_need_token: bool
    hosts: frozenset[str] | None

    def caller(self, authorization: str | None) -> str | None:
        """The token's name if the header carries the token; None when there is no
        header; refused when there is a header with anything else."""
        if authorization is None:
            return None
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(secret.strip().encode(), self.token.secret.encode()):
            raise unauthorized("the Authorization header does not carry this server's token ('argonfs serve token' prints it)")
        return self.token.name

    def session(self, cookie: str | None) -> str | None:
        """The token's name if the session cookie is this server's; None otherwise (a
        stale cookie, of a token since replaced, is no session)."""
        if cookie and secrets.compare_digest(cookie.encode(), session_value(self.token).encode()):
            return self.token.name
        return None

    def check(self, host_header: str, authorization: str | None, cookie: str | None = None, *, public: bool = False) -> None:
        """What every request must pass: a Host header the server answers (a loopback
        server refuses other names, so a page of another site cannot reach it by DNS
        rebinding) and, when reads need the token, the token or the session cookie
        (``public``: a path anyone may open, the login page)."""
        if self.hosts is not None and host_of(host_header) not in self.hosts:
            raise RequestError(403, FORBIDDEN_HOST, f"this server answers only {', '.join(sorted(self.hosts))} in the Host header")
        if self.caller(authorization) is None and self.session(cookie) is None and self.reads_need_token and not public:
            raise unauthorized("this server is not on loopback: every request needs Authorization: Bearer TOKEN ('argonfs serve token' prints it)")


def unauthorized(message: str) -> RequestError:
    return RequestError(401, UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


# ---------------------------------------------------------------------- FastAPI dependencies
# (no I/O in them: they run on the event loop; ``Policy.check`` runs for every request in
# app.py's middleware, before any route, so it covers the OpenAPI schema and unknown paths)


def policy_of(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


async def repository(request: Request) -> Repository:
    """The repository the server was started on, for reading."""
    repo: Repository = request.app.state.repo
    return repo


def caller_name(request: Request) -> str:
    """Who is asking, for the read log: the token's name when the request carries the
    token or the session, else ``anonymous`` and the client's address."""
    policy = policy_of(request)
    name = policy.caller(request.headers.get("authorization")) or policy.session(request.cookies.get(SESSION))
    if name is not None:
        return name
    return f"anonymous@{request.client.host}" if request.client else "anonymous"


async def form_writer(request: Request) -> Repository:
    """The repository writing as the token's name, for a console form post: the session
    cookie (or the token), the form's CSRF field, and no Origin of another site."""
    policy = policy_of(request)
    origin = request.headers.get("origin")
    if origin is not None and origin not in (f"{request.url.scheme}://{request.headers.get('host', '')}",):
        raise RequestError(403, "cross_site", f"a form of {origin} cannot post to this server")
    form = await request.form()
    given = form.get("csrf")
    if not isinstance(given, str) or not secrets.compare_digest(given.encode(), csrf_value(policy.token).encode()):
        raise RequestError(403, "cross_site", "the form's CSRF field is missing or not this server's: reload the page and send it again")
    caller = policy.caller(request.headers.get("authorization")) or policy.session(request.cookies.get(SESSION))
    if caller is None:
        raise unauthorized("log in with the token first (/login; 'argonfs serve token' prints it)")
    repo: Repository = request.app.state.repo
    return repo.with_author(caller)


async def writer(request: Request) -> Repository:
    """The repository writing as the token's name; refused without the token."""
    caller = policy_of(request).caller(request.headers.get("authorization"))
    if caller is None:
        raise unauthorized("writes need Authorization: Bearer TOKEN ('argonfs serve token' prints it)")
    repo: Repository = request.app.state.repo
    return repo.with_author(caller)
