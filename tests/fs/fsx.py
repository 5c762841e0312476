"""A random-operation checker in the style of fsx: the same operations on a directory of
the mount and on a local reference directory, compared one by one.

Scratch files (names not ending in ``.json``) get the full treatment: several open
descriptors at once, writes and reads at any offset, truncation, fstat, rename (also
over other files) and unlink while open.  Documents (``<n>.json``) are written whole,
read, renamed (the ``_id`` follows the name, as ``mv`` does in the mount) and removed;
the reference holds what the mount must show, argonfs's rendering of each document.

Used by tests/fs/test_fsx.py (a fixed seed, seconds) and scripts/fsx_mount.py (minutes).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argonfs import codec

SCRATCH = [f"s{i}.tmp" for i in range(4)]
DOCS = [f"{i}.json" for i in range(4)]
MAX_SIZE = 200_000


class Mismatch(AssertionError):
    pass


@dataclass
class Checker:
    mnt: Path
    ref: Path
    rng: random.Random
    #: pairs of descriptors (mount, reference) of the same file
    fds: list[tuple[int, int, str]] = field(default_factory=list)
    ops: int = 0
    trace: list[str] = field(default_factory=list)

    def both(self, what: str, fn: Any) -> Any:
        """Run ``fn(root_or_fd_index)`` on both sides; results (or errnos) must agree."""
        results = []
        for side in (0, 1):
            try:
                results.append(("ok", fn(side)))
            except OSError as exc:
                results.append(("errno", exc.errno))
        self.ops += 1
        self.trace.append(f"{what} -> {results[1]}")
        if results[0] != results[1]:
            tail = "\n".join(self.trace[-30:])
            raise Mismatch(f"op {self.ops} {what}: mount gave {results[0]!r}, a local disk {results[1]!r}\nlast operations:\n{tail}")
        return results[0]

    def root(self, side: int) -> Path:
        return self.mnt if side == 0 else self.ref

    def step(self) -> None:
        r = self.rng
        choice = r.random()
        if choice < 0.55 or not self.fds:
            self.scratch_op()
        else:
            self.doc_op()

    # ------------------------------------------------------------------ scratch files

    def scratch_op(self) -> None:
        r = self.rng
        kind = r.choice(["open", "open", "write", "write", "read", "truncate", "stat", "close", "rename", "unlink", "list", "readfile"])
        name = r.choice(SCRATCH)
        if kind == "open" or not self.fds:
            if len(self.fds) >= 6:
                kind = "close"
            else:
                flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if r.random() < 0.2 else 0)
                fd_pair: list[int] = []

                def do_open(side: int) -> int:
                    fd = os.open(self.root(side) / name, flags, 0o644)
                    fd_pair.append(fd)
                    return 0

                self.both(f"open {name} {flags:o}", do_open)
                if len(fd_pair) == 2:
                    self.fds.append((fd_pair[0], fd_pair[1], name))
                else:
                    for fd in fd_pair:
                        os.close(fd)
                return
        i = r.randrange(len(self.fds)) if self.fds else 0
        if kind == "write":
            off = r.randrange(0, MAX_SIZE // 2)
            data = r.randbytes(r.randrange(1, 5000))
            self.both(f"pwrite #{i} at {off} {len(data)}", lambda s: os.pwrite(self.fds[i][s], data, off))
        elif kind == "read":
            off, size = r.randrange(0, MAX_SIZE // 2), r.randrange(1, 20_000)
            self.both(f"pread #{i} at {off} {size}", lambda s: os.pread(self.fds[i][s], size, off))
        elif kind == "truncate":
            size = r.randrange(0, MAX_SIZE // 2)
            self.both(f"ftruncate #{i} {size}", lambda s: os.ftruncate(self.fds[i][s], size))
        elif kind == "stat":
            self.both(f"fstat #{i}", lambda s: os.fstat(self.fds[i][s]).st_size)
        elif kind == "close":
            fd0, fd1, _ = self.fds.pop(i)
            self.both(f"close #{i}", lambda s: os.close((fd0, fd1)[s]))
        elif kind == "rename":
            dst = r.choice(SCRATCH)
            self.both(f"rename {name} {dst}", lambda s: os.rename(self.root(s) / name, self.root(s) / dst))
        elif kind == "unlink":
            self.both(f"unlink {name}", lambda s: os.unlink(self.root(s) / name))
        elif kind == "list":
            self.both("listdir", lambda s: sorted(os.listdir(self.root(s))))
        elif kind == "readfile":
            self.both(f"read {name}", lambda s: (self.root(s) / name).read_bytes())

    # ------------------------------------------------------------------ documents

    def doc_op(self) -> None:
        r = self.rng
        kind = r.choice(["write", "write", "read", "rename", "unlink", "stat"])
        name = r.choice(DOCS)
        if kind == "write":
            doc = {"_id": int(name[:-5]), "v": r.randrange(10**6), "pad": "x" * r.randrange(0, 3000)}
            data = codec.render(doc)
            self.both(f"write {name}", lambda s: (self.root(s) / name).write_bytes(data))
        elif kind == "read":
            self.both(f"read {name}", lambda s: (self.root(s) / name).read_bytes())
        elif kind == "stat":
            self.both(f"stat {name}", lambda s: (self.root(s) / name).stat().st_size)
        elif kind == "unlink":
            self.both(f"unlink {name}", lambda s: os.unlink(self.root(s) / name))
        else:
            dst = r.choice(DOCS)

            def move(side: int) -> None:
                os.rename(self.root(side) / name, self.root(side) / dst)
                if side == 1 and name != dst:  # the document takes the id its new name says
                    doc = codec.parse((self.ref / dst).read_bytes())
                    doc["_id"] = int(dst[:-5])
                    (self.ref / dst).write_bytes(codec.render(doc))

            self.both(f"rename {name} {dst}", move)

    def close_all(self) -> None:
        while self.fds:
            fd0, fd1, _ = self.fds.pop()
            self.both("close", lambda s, fd0=fd0, fd1=fd1: os.close((fd0, fd1)[s]))
        self.both("listdir", lambda s: sorted(os.listdir(self.root(s))))
        for name in sorted(os.listdir(self.ref)):
            self.both(f"final read {name}", lambda s, name=name: (self.root(s) / name).read_bytes())


def run(mnt: Path, ref: Path, seed: int, ops: int) -> Checker:
    checker = Checker(mnt, ref, random.Random(seed))
    try:
        for _ in range(ops):
            checker.step()
    finally:
        checker.close_all()
    return checker
