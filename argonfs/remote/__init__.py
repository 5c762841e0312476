"""Remotes: bundles and labels published to object stores (GCS, S3, a directory).

objects.py is the object-store interface and its backends' selection; format.py the
bundle format on top of it and chunks.py its manifest chunks; reading.py (``Remote``) and
packs.py read a remote; push.py and pull.py move bundles between a repository and a
remote; snapshots.py serves a remote to the mount with no MongoDB.
"""
