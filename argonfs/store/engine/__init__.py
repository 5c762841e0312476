"""The version engine: how versions are laid out in MongoDB and read back.

Owns the version records and their dense per-branch slots (versions.py), atomic batches
and what a snapshot can see of them (commits.py), packs of bulk writes (packs.py) and their
listings (bulk.py), listing checkpoints (checkpoints.py), reading a snapshot through its
chain of layers (reading.py, lookup.py), what changed between two chains (diff.py), and
the migrations between repository formats (migrations.py).  docs/formats.md describes
every field it writes; docs/architecture.md says why it is laid out so.

Works on collections handed to it (``db["versions"]``...), knows nothing of names,
refs, authors or protection.  May import: argonfs.store.db, argonfs.codec,
argonfs.errors, argonfs.config.  Never argonfs.store.repo.
"""
