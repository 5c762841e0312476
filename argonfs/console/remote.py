"""The console over a remote, with no MongoDB: the ASGI application ``argonfs serve
--remote URL`` runs (docs/console.md, "Serving a remote").

The same paths and JSON shapes as app.py's application over a repository, for what a
remote holds (remote_api.py: its bundles, labels and label history, and the collections
and documents of a bundle; remote_pages.py: the console's pages), with the same ``Guard``
and the one error seam of app.py.  Read-only: a remote changes only by pushing to it, so
every write (POST, PUT, PATCH, DELETE, on any path) is 403 ``read_only``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request

from argonfs.console import remote_api, remote_pages
from argonfs.console.app import API, _version, guard
from argonfs.console.auth import Policy
from argonfs.console.paging import Signer
from argonfs.console.remote_api import Catalog
from argonfs.errors import NotFound, ReadOnly
from argonfs.remote.snapshots import RemoteCatalog

writes = APIRouter(include_in_schema=False)


def create_remote_app(remote: RemoteCatalog, policy: Policy) -> FastAPI:
    """The application serving ``remote`` read-only; ``policy`` says what a request must
    carry (as for a repository: the token signs cursors, and off loopback every request
    needs it)."""
    app = FastAPI(
        title="argonfs",
        version=_version(),
        description=f"Bundles, labels and documents of the argonfs remote {remote.url}, read-only (docs/console.md).",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # as app.py: no scripts from a CDN
        redoc_url=None,
    )
    app.state.catalog = remote
    app.state.policy = policy
    app.state.signer = Signer.for_secret(policy.token.secret)
    app.include_router(remote_api.router, prefix=API)
    app.include_router(remote_pages.router)
    app.include_router(writes)  # last: it takes every path
    guard(app, policy, f"remote {remote.url} (read-only)")
    return app


@writes.api_route("/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE", "GET"])
def refuse(request: Request, remote: Catalog, path: str) -> None:
    """Every write, on any path: a remote changes only by pushing to it.  (Routed after
    every read; a read of a path no route has is 404 here, as in app.py: a route taking
    only writes would make it 405.)"""
    if request.method == "GET":
        raise NotFound(f"no such path: {request.url.path}")
    raise ReadOnly(f"remote {remote.url} is served read-only (a remote changes only by pushing to it)")
