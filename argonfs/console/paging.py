"""Cursor pagination: a page of a long listing, every page of it from one snapshot.

The first page pins the ref (a branch to its current head, a label to its bundle) and
its ``next`` cursor carries that pinned snapshot and the position after the page, so the
pages of one walk never mix two states of a branch that moves meanwhile.  A cursor is
opaque to clients (base64url of a small JSON object and its MAC, keyed by the server's
token, so it survives a restart) and untrusted here: one this server did not sign, or
one used with another ref than its own, is refused, and its snapshot is resolved again
like any ref.  ``snapshot`` is blocking (it resolves refs through the store).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from argonfs.console.statuses import RequestError
from argonfs.errors import Conflict
from argonfs.store import Repository, View

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INVALID_CURSOR = "invalid_cursor"


class Signer:
    """Signs cursors and opens them again: ``payload.mac``, both base64url."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_secret(cls, secret: str) -> Signer:
        return cls(hashlib.sha256(b"argonfs console cursors\0" + secret.encode()).digest())

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def sign(self, payload: bytes) -> str:
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(self, text: str) -> bytes:
        """The payload of a cursor this signer made; refused (400) otherwise."""
        body, _, mac = text.partition(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (ValueError, binascii.Error):
            payload, given = b"", b""
        if not given or not hmac.compare_digest(given, self._mac(payload)):
            raise RequestError(400, INVALID_CURSOR, "the cursor is not one this server gave out")
        return payload


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def signer(request: Request) -> Signer:
    """FastAPI dependency: the app's cursor signer (app.py makes it)."""
    found: Signer = request.app.state.signer
    return found


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: ``ref`` as the client named it, ``at`` the pinned
    snapshot (``BRANCH@SEQ`` or a bundle id), ``branch`` the id of that snapshot's
    branch (a branch deleted and created again under its name is another branch), and
    ``after`` the position (a document name, or a count of entries already shown)."""

    ref: str
    at: str
    branch: str
    after: str

    def encode(self, signer: Signer) -> str:
        return signer.sign(json.dumps({"r": self.ref, "a": self.at, "b": self.branch, "p": self.after}, separators=(",", ":")).encode())

    @classmethod
    def decode(cls, text: str, ref: str, signer: Signer) -> Cursor:
        try:
            data: Any = json.loads(signer.open(text))
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "rabp"):
            raise RequestError(400, INVALID_CURSOR, "the cursor is not one this server gave out")
        if data["r"] != ref:
            raise RequestError(400, INVALID_CURSOR, f"the cursor belongs to a listing of {data['r']!r}, not of {ref!r}")
        return cls(data["r"], data["a"], data["b"], data["p"])


def pinned_name(view: View) -> str:
    """A ref naming exactly the pinned ``view``'s state."""
    if view.bundle is not None:
        return view.bundle
    return f"{view.branch}@{view.seq}"


@dataclass(frozen=True)
class Snapshot:
    """The pinned view a page is read from, the cursor of this page (None: first), and
    the signer of the next one."""

    view: View
    cursor: Cursor | None
    signer: Signer

    @property
    def after(self) -> str:
        return self.cursor.after if self.cursor is not None else ""

    def next(self, after: str) -> str:
        """The cursor of the page that starts after ``after``."""
        view = self.view
        return Cursor(view.ref if self.cursor is None else self.cursor.ref, pinned_name(view), str(view.branch_id), after).encode(self.signer)


def snapshot(repo: Repository, ref: str, cursor: str | None, signer: Signer) -> Snapshot:
    """The ref pinned for a first page, or the snapshot a cursor carries."""
    if cursor is None:
        return Snapshot(repo.pin(ref), None, signer)
    c = Cursor.decode(cursor, ref, signer)
    view = repin(repo, c.at, c.branch)
    return Snapshot(View(ref, view.chain, view.kind, view.branch, view.bundle), c, signer)


def repin(repo: Repository, at: str, branch: str) -> View:
    """A pinned state named earlier (``pinned_name``, with its branch's id) resolved
    again: Conflict when the branch under that name is no longer the same one."""
    view = repo.pin(at)
    if str(view.branch_id) != branch:
        raise Conflict(f"{at!r} is no longer the snapshot this started from (its branch was deleted and made again); start again")
    return view


def seal(signer: Signer, kind: str, state: dict[str, Any]) -> str:
    """State a client hands back later (a diff's position, a merge preview), signed:
    opaque to the client, and refused if changed or used as another ``kind``."""
    return signer.sign(json.dumps({"kind": kind, **state}, separators=(",", ":")).encode())


def unseal(signer: Signer, text: str, kind: str, what: str = INVALID_CURSOR) -> dict[str, Any]:
    """The state ``seal`` signed, checked to be of ``kind``; 400 ``what`` otherwise."""
    try:
        data: Any = json.loads(signer.open(text))
    except (ValueError, RequestError):
        data = None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise RequestError(400, what, f"not a {kind} {what.removeprefix('invalid_')} this server gave out")
    return data


def page_of(items: list[Any], limit: int) -> tuple[list[Any], bool]:
    """The first ``limit`` of ``items`` (read as ``limit + 1``), and whether there are more."""
    return items[:limit], len(items) > limit
