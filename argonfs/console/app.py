"""The ASGI application ``argonfs serve`` runs: the API under /api/v1 (OpenAPI at
/api/v1/openapi.json), the console's pages under /, who may call (auth.py), and the one
seam where every error becomes an answer.

The seam: an argonfs error takes the status and name statuses.py gives its class; a
request the HTTP layer refuses (a bad cursor, no token) its own; FastAPI's validation
errors are 422 ``invalid_request`` with the details; Starlette's (an unknown path, a
wrong method) their status; anything else is a bug, logged with its traceback and
answered 500 ``internal`` with no detail.  Under /api every error is JSON
``{error, message, detail}``; on a page the same error is an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from argonfs.console import api, documents, merges, pages, review
from argonfs.console.auth import Policy
from argonfs.console.paging import Signer
from argonfs.console.statuses import HTTP_NAMES, INTERNAL, INVALID_REQUEST, RequestError, body, status_of
from argonfs.errors import ArgonError
from argonfs.store import Repository

log = logging.getLogger(__name__)

API = "/api/v1"

Answer = Callable[[Request, int, dict[str, Any], "dict[str, str] | None"], Response]


class Guard:
    """ASGI middleware: every HTTP request passes ``Policy.check`` (the Host header, and
    the token when reads need it) before any route sees it, the OpenAPI schema and an
    unknown path included; a refusal is answered in the one error shape."""

    def __init__(self, app: ASGIApp, policy: Policy, answer: Answer) -> None:
        self.app = app
        self.policy = policy
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                self.policy.check(request.headers.get("host", ""), request.headers.get("authorization"))
            except RequestError as exc:
                await self.answer(request, exc.status, body(exc.error, exc.message), exc.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _version() -> str:
    try:
        return version("argonfs")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "0"


def create_app(repo: Repository, policy: Policy) -> FastAPI:
    """The application serving ``repo``; ``policy`` says what a request must carry."""
    app = FastAPI(
        title="argonfs",
        version=_version(),
        description="Branches, bundles, labels and documents of an argonfs repository (docs/console.md).",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: the console works offline
        redoc_url=None,
    )
    app.state.repo = repo
    app.state.policy = policy
    app.state.signer = Signer.for_secret(policy.token.secret)
    app.include_router(api.router, prefix=API)
    app.include_router(documents.router, prefix=API)
    app.include_router(review.router, prefix=API)
    app.include_router(merges.router, prefix=API)
    app.include_router(pages.router)

    def answer(request: Request, status: int, problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/api":
            return JSONResponse(problem, status_code=status, headers=headers)
        page = pages.error_page(status, problem, repo.db.name)
        if headers:
            page.headers.update(headers)
        return page

    app.add_middleware(Guard, policy=policy, answer=answer)

    @app.exception_handler(ArgonError)
    async def argon_error(request: Request, exc: ArgonError) -> Response:
        status, name = status_of(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, status, body(name, str(exc)))

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        return answer(request, exc.status, body(exc.error, exc.message), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return answer(request, 422, body(INVALID_REQUEST, f"{where}: {first['msg']}" if where else str(first["msg"]), jsonable_encoder(detail)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        name = HTTP_NAMES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else name
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        return answer(request, exc.status_code, body(name, message), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, 500, body(INTERNAL, "internal error: the server's log has the details"))

    return app
