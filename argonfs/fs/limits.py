"""The mount's timeouts, cache sizes and limits, in one place.

Caching, docs/mount.md has the user's view of it:

* bundles and ``BRANCH@SEQ`` views never change: long kernel timeouts, page cache kept;
* branch heads change: kernel timeouts of ``BRANCH_TIMEOUT`` seconds, and attributes
  the daemon remembers are reused only while the branch's head seq is unchanged
  (one cheap probe, at most every ``HEAD_TTL`` seconds per branch);
* document bodies are cached by version, which never changes;
* the shard view of a frozen state (fs/shards.py) is summarised once per collection,
  from one listing: a shard's size needs no body;
* a name a complete listing did not show, and that this daemon has not written since,
  is absent while every later slot of the branch is this daemon's own write
  (fs/absent.py): ``cp -r`` into a collection asks the store nothing before each create.
"""

from __future__ import annotations

from argonfs import codec

BRANCH_TIMEOUT = 1.0
FROZEN_TIMEOUT = 3600.0
HEAD_TTL = 0.25
PAGE = 1000
PREFETCH = 256
MAX_FILE = codec.MAX_BSON_SIZE
NAME_MAX = 255
#: what statfs reports: a capacity like other network filesystems (rclone, goofys), with
#: the repository's storage as used; see docs/mount.md
CAPACITY = 2**50
MAX_FILES = 2**40
USAGE_TTL = 30.0
#: collections whose shard summaries (fs/shards.py) are kept
SHARD_SUMMARIES = 256
#: shards whose listing entries are kept, so opening one again asks the store nothing
SHARD_LISTINGS = 32
#: for this long after a file of a collection was opened for writing through this mount,
#: its documents are read with direct I/O (see ``open``)
HOT_TTL = 60.0
