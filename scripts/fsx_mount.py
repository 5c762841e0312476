"""Run the fsx-style checker (tests/fs/fsx.py) against a real mount for a while.

    .venv/bin/python scripts/fsx_mount.py --minutes 10 [--seed N]

Starts an in-process SecantusDB, mounts a fresh repository, runs rounds of random
operations (a new seed per round) comparing the mount with a local directory, and
prints operations per second; exits non-zero at the first mismatch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secantus import SecantusDBServer  # noqa: E402

from tests.fs import fsx  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--ops", type=int, default=2000, help="operations per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argonfs-fsx-") as tmp:
        work = Path(tmp)
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(work / "db"))
        server.start()
        env = dict(os.environ, ARGONFS_MONGO_URI=server.uri, ARGONFS_REPO="fsx", ARGONFS_HOME=str(work / "home"))
        argonfs = [sys.executable, "-m", "argonfs"]
        subprocess.run([*argonfs, "init"], env=env, check=True, capture_output=True)
        mnt = work / "mnt"
        mnt.mkdir()
        subprocess.run([*argonfs, "mount", str(mnt)], env=env, check=True)
        try:
            until, rounds, ops, start = time.monotonic() + args.minutes * 60, 0, 0, time.monotonic()
            while time.monotonic() < until:
                coll, ref = mnt / "branches/main" / f"r{rounds}", work / f"ref{rounds}"
                coll.mkdir()
                ref.mkdir()
                checker = fsx.run(coll, ref, args.seed + rounds, args.ops)
                ops += checker.ops
                rounds += 1
                print(f"round {rounds} (seed {args.seed + rounds - 1}): {checker.ops} operations agree", flush=True)
            elapsed = time.monotonic() - start
            print(f"{ops} operations in {rounds} rounds, {elapsed:.0f} s: {ops / elapsed:.0f} operations/s, no mismatch")
        finally:
            subprocess.run([*argonfs, "umount", str(mnt)], env=env, check=False)
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
