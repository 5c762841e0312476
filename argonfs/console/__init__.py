"""The web console and the HTTP API that ``argonfs serve`` runs (docs/console.md).

A seam over the store, not a second store: every handler parses the request, calls one
``Repository`` method in a worker thread and shapes the answer.

    app.py       the ASGI application: routers, the error seam, who may call
    statuses.py  which HTTP status and error name each argonfs error is; the one error shape
    auth.py      the token kept in the data directory, and the checks of a request
    paging.py    opaque cursors: a page of a listing, pinned to one snapshot
    api.py       /api/v1: branches, bundles, labels
    documents.py /api/v1: collections and documents at any ref, history, put and delete
    pages.py     the console's HTML pages (templates/ holds their markup)
    captures.py  /api/v1: captures (and their event stream) and remotes; schemas_outside.py
                 their models, outside_pages.py the /captures and /remotes pages
    serving.py   running it under uvicorn: the bind address and what is said at start
    remote.py    the application over a remote, read-only and with no MongoDB
                 (``serve --remote``): remote_api.py its /api/v1, remote_pages.py its pages

It stands on the store, capture (``capture.status``) and remote (reading; for
``serve --remote`` through ``RemoteCatalog``) (and ``argonfs.config``, ``codec``,
``errors``); the store imports
nothing of it, and it imports nothing of the CLI, the mount (``fs``, ``daemon``) or ``ml``
(tests/test_shape.py checks both).
"""
