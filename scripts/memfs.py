"""The benchmark's ceiling: a minimal in-memory pyfuse3 filesystem under trio.

    python scripts/memfs.py SOURCE_DIR MOUNTPOINT READY_FILE
    python scripts/memfs.py --names NAMES.tsv MOUNTPOINT READY_FILE

Loads every file of SOURCE_DIR (one level of subdirectories) into memory and serves
it read-only with the same kernel timeouts argonfs uses for branches, until SIGTERM.
Nothing else happens per request, so it is the fastest a Python FUSE filesystem can
answer on this machine.  With ``--names``, it serves one directory, ``big``, of the
files listed in NAMES.tsv (``name<TAB>size`` per line) with those sizes, their bytes
all zero: the listing floor for a collection too large to write out as files
(scripts/bench_scale.py).
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys

import pyfuse3
import trio

TIMEOUT = 1.0


class MemFS(pyfuse3.Operations):
    def __init__(self, source: str | None, names: str | None = None) -> None:
        super().__init__()
        self.names: dict[int, dict[bytes, int]] = {pyfuse3.ROOT_INODE: {}}
        self.data: dict[int, bytes] = {}
        #: sizes of the files served from a names list (their bytes are zeros)
        self.sizes: dict[int, int] = {}
        ino = pyfuse3.ROOT_INODE
        if names is not None:
            ino += 1
            dir_ino = ino
            self.names[pyfuse3.ROOT_INODE][b"big"] = dir_ino
            self.names[dir_ino] = {}
            with open(names, "rb") as f:
                for line in f:
                    name, size = line.rstrip(b"\n").split(b"\t")
                    ino += 1
                    self.sizes[ino] = int(size)
                    self.names[dir_ino][name] = ino
        for sub in sorted(os.listdir(source)) if source is not None else ():
            ino += 1
            dir_ino = ino
            self.names[pyfuse3.ROOT_INODE][sub.encode()] = dir_ino
            self.names[dir_ino] = {}
            for name in sorted(os.listdir(os.path.join(source, sub))):
                ino += 1
                with open(os.path.join(source, sub, name), "rb") as f:
                    self.data[ino] = f.read()
                self.names[dir_ino][name.encode()] = ino
        self.handles: dict[int, list[tuple[bytes, int]]] = {}

    def _attr(self, ino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.entry_timeout = a.attr_timeout = TIMEOUT
        if ino in self.names:
            a.st_mode, a.st_nlink = stat.S_IFDIR | 0o755, 2
        else:
            size = self.sizes[ino] if ino in self.sizes else len(self.data[ino])
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o644, 1, size
        a.st_blksize = 4096
        return a

    async def lookup(self, parent_inode, name, ctx=None):
        ino = self.names.get(parent_inode, {}).get(name)
        if ino is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attr(ino)

    async def getattr(self, inode, ctx=None):
        return self._attr(inode)

    async def opendir(self, inode, ctx):
        self.handles[inode] = sorted(self.names[inode].items())
        return inode

    async def readdir(self, fh, start_id, token):
        items = self.handles[fh]  # indexed, not sliced: a big directory is read in many calls
        for i in range(start_id, len(items)):
            name, ino = items[i]
            if not pyfuse3.readdir_reply(token, name, self._attr(ino), i + 1):
                break

    async def open(self, inode, flags, ctx):
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh, off, size):
        if fh in self.sizes:
            return bytes(max(0, min(size, self.sizes[fh] - off)))
        return self.data[fh][off : off + size]

    async def release(self, fh):
        pass

    async def releasedir(self, fh):
        pass

    async def flush(self, fh):
        pass


async def main(mountpoint: str, ready: str) -> None:
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            await pyfuse3.main()
            nursery.cancel_scope.cancel()

        nursery.start_soon(serve)
        await trio.to_thread.run_sync(os.stat, mountpoint)
        with open(ready, "w") as f:
            f.write("ready\n")
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                pyfuse3.terminate()
                break


if __name__ == "__main__":
    if sys.argv[1] == "--names":
        mountpoint, ready = sys.argv[3:5]
        fs = MemFS(None, sys.argv[2])
    else:
        source, mountpoint, ready = sys.argv[1:4]
        fs = MemFS(source)
    pyfuse3.init(fs, mountpoint, {"fsname=memfs", "ro"})
    try:
        trio.run(main, mountpoint, ready)
    finally:
        pyfuse3.close(unmount=True)
