"""The FUSE filesystem: pyfuse3 handlers over a catalog of snapshots (argonfs/snapshot.py).

Handlers are thin: each one is wrapped by ``fuse_op`` (fs/seam.py, the single place where
argonfs errors become errnos and unexpected exceptions are logged and answered with EIO)
and calls private helpers.  Every catalog and snapshot call runs in a worker thread
through the runner (argonfs/runner.py).  The handlers live by job:

* fs/attributes.py: lookup, forget, getattr, setattr, statfs;
* fs/directories.py: opendir, readdir, mkdir, rmdir;
* fs/files.py: open, create, read, write, flush, fsync, release (bodies from fs/bodies.py,
  the commit at close in fs/commit.py);
* fs/names.py: unlink, rename, symlink, readlink, link.
"""

from __future__ import annotations

from argonfs.fs.attributes import Attributes
from argonfs.fs.directories import Directories
from argonfs.fs.names import Names


class ArgonOperations(Attributes, Directories, Names):
    """The mount's handlers, put together; ``FsBase`` (fs/base.py) holds the state and
    ``Refresh`` (fs/refresh.py) says what a path means now."""


__all__ = ["ArgonOperations"]
