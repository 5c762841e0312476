"""The repository API over the engine: ``Repository`` and everything it says in names.

Owns the façade (repository.py) and its parts, one module per noun and each a base class
of it: the shared state and refs turned into views (views.py), branches, bundles and
labels (refs.py), documents and collections (documents.py, writes.py, imports.py),
history, diff, merge and revert (history.py, with the pure merge rules in merge.py),
protection (protect.py), the read log (readlog.py) and known remotes (remotes.py); the
values it hands out (model.py), garbage collection (gc.py) and import and export of
directories and databases (transfer.py).

May import: argonfs.store.engine, argonfs.store.db, argonfs.naming, argonfs.codec,
argonfs.errors, argonfs.config.  Nothing above it (fs, remote, capture, cli, ml).
"""
