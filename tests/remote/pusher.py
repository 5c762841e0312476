"""A push in a child process that dies or waits at a chosen upload (for tests).

    python pusher.py MONGO_URI REPO REMOTE_URL BUNDLE [LABEL]

ARGONFS_TEST_KILL_AFTER=N    SIGKILL this process right after its N-th created object
ARGONFS_TEST_PAUSE=FILE      before writing the descriptor, create FILE.reached and wait
                             until FILE exists
ARGONFS_TEST_PACK_TARGET=B   cut packs at B bytes (many packs from few documents)
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from argonfs.remote import format as f
from argonfs.remote import reading
from argonfs.remote.objects import ObjectStore, open_store
from argonfs.remote.push import push_bundle
from argonfs.store import Repository


class Interrupting:
    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.created = 0
        self.kill_after = int(os.environ.get("ARGONFS_TEST_KILL_AFTER", "0"))
        self.pause = os.environ.get("ARGONFS_TEST_PAUSE")

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if key.startswith("bundles/") and self.pause:
            Path(self.pause + ".reached").touch()
            while not Path(self.pause).exists():
                time.sleep(0.02)
        created = self.inner.put_if_absent(key, data)
        self.created += created
        if self.kill_after and self.created >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return created

    def __getattr__(self, name: str):  # get, get_range, list, delete
        return getattr(self.inner, name)


def main() -> None:
    mongo_uri, repo_name, url, bundle = sys.argv[1:5]
    label = sys.argv[5] if len(sys.argv) > 5 else None
    if "ARGONFS_TEST_PACK_TARGET" in os.environ:
        f.PACK_TARGET = int(os.environ["ARGONFS_TEST_PACK_TARGET"])
    repo = Repository.open(mongo_uri, repo_name, author="pusher")
    report = push_bundle(repo, reading.Remote(Interrupting(open_store(url))), bundle, label=label)
    print(report.label_slot)


if __name__ == "__main__":
    main()
