"""``remote gc``: delete the objects of a remote that no bundle reaches.

Reachable: every descriptor under ``bundles/``, the chunks of every layer it lists, and
the packs those chunks point into.  Anything else under ``packs/`` and ``chunks/`` (what
a killed push left, or a push still running) is deleted only once it is older than the
grace period, so a push in flight, which writes its objects before its descriptor, is
never harmed as long as it finishes within the grace period; a push also checks that
every object it reuses is still there just before it writes its descriptor.  Blocking.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from argonfs.remote import format as f
from argonfs.remote import reading

log = logging.getLogger(__name__)

DEFAULT_GRACE = 3600.0


@dataclass
class GcReport:
    bundles: int = 0
    reachable: int = 0
    deleted: int = 0
    bytes_deleted: int = 0
    #: unreachable but younger than the grace period
    kept_young: int = 0
    dry_run: bool = False
    keys: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "keys"}


def collect(remote: reading.Remote, *, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> GcReport:
    report = GcReport(dry_run=dry_run)
    remote.check_format()
    # list the candidates first: an object written after this listing is not a candidate,
    # and one written before it by a push whose descriptor lands later is young
    candidates = [o for prefix in ("packs/", "chunks/") for o in remote.store.list(prefix)]
    reachable: set[str] = set()
    for bundle_id in remote.bundle_ids():
        report.bundles += 1
        desc = remote.descriptor(bundle_id)
        for layers in desc.collections.values():
            for layer in layers:
                for ref in layer:
                    key = f.chunk_key(ref.hash)
                    if key in reachable:
                        continue
                    reachable.add(key)
                    for e in remote.chunk(ref):
                        if not isinstance(e, str):
                            reachable.add(f.pack_key(e.pack))
    report.reachable = len(reachable)
    cutoff = time.time() - grace
    for o in candidates:
        if o.key in reachable:
            continue
        if o.mtime > cutoff:
            report.kept_young += 1
            continue
        report.deleted += 1
        report.bytes_deleted += o.size
        report.keys.append(o.key)
        if not dry_run:
            remote.store.delete(o.key)
            log.info("remote gc: deleted %s (%d bytes) from %s", o.key, o.size, remote.url)
    return report
