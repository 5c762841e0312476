"""Everything a remote says is untrusted input: a crafted remote (tests/remote/crafted.py),
every hash valid, with sizes and offsets past a pack's end, counts that lie, fields of the
wrong type and names no document or collection may have.  Each read gives ``Corrupt``
(or skips the name) within a deadline, never a loop, and the cache stays bounded in
files as well as bytes."""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import trio

from argonfs.errors import ArgonError, Corrupt, NotFound
from argonfs.remote import format as f
from argonfs.remote import reading
from argonfs.remote.cache import FILE_COST, Cache
from argonfs.remote.objects import open_store
from argonfs.remote.pull import pull
from argonfs.remote.push import push_bundle
from argonfs.store import Repository
from tests.remote import crafted
from tests.remote.fixtures import Remote

T = TypeVar("T")

#: seconds a read of a crafted remote may take before the test fails (a loop would not end)
DEADLINE = 30
HUGE = 9_000_000_000_000


def within(fn: Callable[[], T], seconds: float = DEADLINE) -> T:
    """``fn()`` in a worker thread, failing the test (trio.TooSlowError) if it takes longer."""

    async def main() -> T:
        with trio.fail_after(seconds):
            return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)

    return trio.run(main)


@pytest.fixture
def source(repo: Repository, remote: Remote) -> tuple[reading.Remote, str]:
    """A remote of each backend holding one real bundle (label ``prod``): 30 documents."""
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}", "body": "x" * (i * 37 % 500)} for i in range(30)))
    bundle = repo.create_bundle("main", "v1", label="prod")
    origin = reading.Remote(open_store(remote.url))
    push_bundle(repo, origin, bundle.id, label="prod")
    return origin, bundle.id


@pytest.fixture
def local_source(repo: Repository, make_remote: Callable[..., Remote]) -> tuple[reading.Remote, str]:
    """The same on a directory remote (what a test of the format alone needs)."""
    repo.import_documents("main", "papers", ({"_id": i, "title": f"paper {i}"} for i in range(10)))
    bundle = repo.create_bundle("main", "v1", label="prod")
    origin = reading.Remote(open_store(make_remote("local").url))
    push_bundle(repo, origin, bundle.id, label="prod")
    return origin, bundle.id


def _cli_pull(mongo_uri: str, repo: Repository, remote: Remote, ref: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "argonfs", "--mongo", mongo_uri, "--repo", repo.db.name, "pull", remote.url, ref]
    return subprocess.run(argv, capture_output=True, text=True, env=remote.child_env(), timeout=120)


# ---------------------------------------------------------------------- sizes and offsets


def test_a_size_or_offset_past_the_pack_is_corrupt_at_once(
    repo: Repository, remote: Remote, source: tuple[reading.Remote, str], tmp_path: Path, mongo_uri: str
) -> None:
    """A size of 9e12 bytes, a size past the pack's end, an offset past it or at it:
    ``Corrupt`` after at most a block or two, never a loop over blocks past the end (the
    old code asked for 4 MiB blocks until the claimed size, each one empty, and cached
    every empty block); ``argonfs pull`` exits 9 with one line and leaves nothing."""
    origin, bundle = source
    good = crafted.rows(origin, bundle, "papers")
    pack_length = len(origin.store.get(f.pack_key(good[0][4])))
    lies: dict[str, tuple[int, int, str]] = {  # case: (size, offset, what the error says)
        "huge": (HUGE, good[3][5], "not a document's place"),
        "past the end": (40 << 20, good[3][5], "past the pack's end"),
        "offset past the end": (good[3][1], 10**12, "ends before byte"),
        "offset at the end": (good[3][1], pack_length, "does not match its hash"),
    }
    for case, (size, offset, message) in lies.items():
        bent = [list(row) for row in good]
        bent[3][1], bent[3][5] = size, offset
        bundle_id = crafted.one_layer(origin, {"papers": bent})
        cache = Cache(tmp_path / f"cache-{len(case)}", 16 * FILE_COST)
        reader = reading.Remote(open_store(remote.url), cache)
        entries = list(reader.entries(reader.descriptor(bundle_id), "papers"))
        with pytest.raises(Corrupt, match=message):
            within(lambda: reader.bodies([entries[3]]))  # noqa: B023 (called at once)
        neighbours = within(lambda: reader.bodies([entries[2], entries[4]]))  # noqa: B023
        assert neighbours == [repo.get(bundle, "papers", e.stem).rendered for e in (entries[2], entries[4])]
        files = list(cache.root.iterdir())
        assert all(p.stat().st_size > 0 for p in files), f"{case}: an empty block was cached"
        assert len(files) * FILE_COST <= cache.max_bytes
        proc = _cli_pull(mongo_uri, repo, remote, bundle_id)
        assert proc.returncode == 9, (case, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        with pytest.raises(NotFound):
            repo.bundle(bundle_id)


# ---------------------------------------------------------------------- counts and fields


def _papers(origin: reading.Remote, bundle: str) -> list[list[Any]]:
    return [list(row) for row in crafted.rows(origin, bundle, "papers")]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _descriptor_lies(origin: reading.Remote, bundle: str) -> dict[str, str]:
    """Bundles whose descriptor lies (a bundle id each), by what the lie is."""
    good = _papers(origin, bundle)
    ref = crafted.chunk(origin, "papers", good)
    layers = {"papers": [[ref]]}
    half = len(good) // 2
    low, high = crafted.chunk(origin, "papers", good[:half]), crafted.chunk(origin, "papers", good[half:])
    return {
        "a count below zero": crafted.bundle(origin, layers, counts={"papers": -1}),
        "a count beyond int64": crafted.bundle(origin, layers, counts={"papers": 1 << 63}),
        "a count as a string": crafted.bundle(origin, layers, counts={"papers": "10"}),
        "a time before 1970": crafted.bundle(origin, layers, time_ns=-5),
        "a time as a string": crafted.bundle(origin, layers, time_ns="now"),
        "a chunk of 10**15 entries": crafted.bundle(origin, {"papers": [[f.ChunkRef(ref.hash, ref.first, ref.last, 10**15)]]}),
        "a chunk of no entries": crafted.bundle(origin, {"papers": [[f.ChunkRef(ref.hash, ref.first, ref.last, 0)]]}),
        "a chunk's hash that is a path": crafted.bundle(origin, {"papers": [[f.ChunkRef("../../../x", ref.first, ref.last, ref.n)]]}),
        "chunks out of order": crafted.bundle(origin, {"papers": [[high, low]]}),
        "chunks that overlap": crafted.bundle(origin, {"papers": [[low, low]]}),
        "a chunk whose first name is after its last": crafted.bundle(origin, {"papers": [[f.ChunkRef(ref.hash, ref.last, ref.first, ref.n)]]}),
        "too many layers": crafted.bundle(origin, {"papers": [[ref]] * (f.MAX_READ_LAYERS + 1)}),
        "no layers": crafted.bundle(origin, {"papers": []}),
        "a sketch that is a list": crafted.bundle(origin, layers, extra={"sketch": [1, 2]}),
        "a sketch that is not base64": crafted.bundle(origin, layers, extra={"sketch": "not base64!"}),
        "a sketch of 7-byte values": crafted.bundle(origin, layers, extra={"sketch": _b64(bytes(7))}),
        "a sketch out of order": crafted.bundle(origin, layers, extra={"sketch": f.encode_sketch([5, 3])}),
        "a sketch with a repeated value": crafted.bundle(origin, layers, extra={"sketch": f.encode_sketch([3, 3])}),
        "a sketch value beyond int64": crafted.bundle(origin, layers, extra={"sketch": f.encode_sketch([1, 1 << 63])}),
        "a sketch longer than SKETCH_K": crafted.bundle(origin, layers, extra={"sketch": f.encode_sketch(list(range(f.SKETCH_K + 1)))}),
    }


def _chunk_lies(origin: reading.Remote, bundle: str) -> dict[str, str]:
    """Bundles with one chunk that lies (a bundle id each), by what the lie is."""
    good = _papers(origin, bundle)
    pack = good[0][4]

    def bent(i: int, field: int, value: Any) -> list[list[Any]]:
        rows = [list(row) for row in good]
        rows[i][field] = value
        return rows

    body = orjson.dumps({"format": f.FORMAT, "collection": "papers", "packs": [pack], "entries": [[r[0], r[1], r[2], r[3], 0, r[5]] for r in good]})
    chunks = {
        "a size as a string": crafted.chunk(origin, "papers", bent(1, 1, "12")),
        "a size below zero": crafted.chunk(origin, "papers", bent(1, 1, -1)),
        "a size beyond int64": crafted.chunk(origin, "papers", bent(1, 1, (1 << 64) - 1)),
        "an mtime as a float": crafted.chunk(origin, "papers", bent(1, 3, 1.5)),
        "an offset below zero": crafted.chunk(origin, "papers", bent(1, 5, -1)),
        "a pack index below zero": crafted.chunk(origin, "papers", bent(1, 4, -1)),
        "a pack index past the table": crafted.chunk(origin, "papers", bent(1, 4, 5)),
        "a hash as a number": crafted.chunk(origin, "papers", bent(1, 2, 7)),
        "a name as a number": crafted.chunk(origin, "papers", bent(0, 0, 7)),
        "names out of order": crafted.chunk(origin, "papers", [good[1], good[0], *good[2:]]),
        "a name twice": crafted.chunk(origin, "papers", [good[0], good[0], *good[1:]]),
        "a row of three fields": crafted.chunk(origin, "papers", [good[0][:3], *good[1:]]),
        "a row that is an object": crafted.chunk(origin, "papers", [{"stem": "0"}, *good[1:]]),  # type: ignore[list-item]
        "one entry more than its reference says": crafted.chunk(origin, "papers", good, n=len(good) - 1),
        "a pack's hash that is a path": crafted.chunk(origin, "papers", good, raw=zlib.compress(body.replace(pack.encode(), b"../../../etc/passwd"))),
        "more than MAX_CHUNK bytes inflated": crafted.chunk(origin, "papers", good, raw=zlib.compress(b" " * (f.MAX_CHUNK + 1), 9)),
        "a truncated stream": crafted.chunk(origin, "papers", good, raw=zlib.compress(body)[:-6]),
    }
    lying_names = crafted.chunk(origin, "papers", good)
    chunks["names other than its reference says"] = f.ChunkRef(lying_names.hash, good[0][0], "zzz", lying_names.n)
    return {case: crafted.bundle(origin, {"papers": [[ref]]}) for case, ref in chunks.items()}


def test_counts_and_fields_that_lie_are_corrupt(local_source: tuple[reading.Remote, str]) -> None:
    """A descriptor or chunk whose counts, types or order lie is ``Corrupt`` when it is
    read (the old code took a count of ``"10"`` or 2**63, a pack index of -1, a size as
    a string, names out of order, and failed later, or silently read the wrong thing)."""
    origin, bundle = local_source
    wrong = {}
    for case, bundle_id in _descriptor_lies(origin, bundle).items():
        wrong[case] = _not_corrupt(lambda: reading.Remote(open_store(origin.url)).descriptor(bundle_id), "not a bundle descriptor")  # noqa: B023
    for case, bundle_id in _chunk_lies(origin, bundle).items():
        reader = reading.Remote(open_store(origin.url))
        desc = reader.descriptor(bundle_id)
        wrong[case] = _not_corrupt(lambda: list(reader.entries(desc, "papers")), "not a manifest chunk|does not hold")  # noqa: B023
    assert {case: what for case, what in wrong.items() if what} == {}


def _not_corrupt(read: Callable[[], object], match: str) -> str | None:
    """None if ``read()`` raises ``Corrupt`` saying ``match`` within the deadline, else what it did."""
    try:
        within(read)
    except Corrupt as exc:
        return None if re.search(match, str(exc)) else f"Corrupt({exc})"
    except Exception as exc:  # reported, with the case, by the caller
        return repr(exc)
    return "read without an error"


def test_objects_larger_than_they_can_be_are_not_read_whole(local_source: tuple[reading.Remote, str]) -> None:
    """A label slot (or a marker) of more than MAX_SMALL bytes is Corrupt, read no further."""
    origin, _bundle = local_source
    slot = origin.label("prod")
    big = f.LabelSlot("prod", 0, "set", slot.bundle, 1, "x" * f.MAX_SMALL).to_bytes()  # sealed: only its size is wrong
    origin.store.put_if_absent(f.label_key("prod", 2), big)
    with pytest.raises(Corrupt, match="larger than"):
        within(lambda: reading.Remote(open_store(origin.url)).label("prod"))
    wrong = f.LabelSlot("prod", 0, "rename", slot.bundle, 1, "x").to_bytes()
    origin.store.put_if_absent(f.label_key("prod", 3), wrong)
    with pytest.raises(Corrupt, match="not a label slot"):
        within(lambda: reading.Remote(open_store(origin.url)).label("prod"))


# ---------------------------------------------------------------------- names


def test_names_a_remote_may_not_give_are_skipped_once_or_refused(
    repo: Repository, local_source: tuple[reading.Remote, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Objects under bundles/ that are not ``bundles/<bundle id>.json`` (a stray copy in a
    nested key) and labels no label may be called are skipped, each logged once; a pull
    of a bundle with a collection or a document no name may have is refused (exit 4)."""
    origin, bundle = local_source
    descriptor = origin.store.get(f.bundle_key(bundle))
    for key in (f"bundles/sub/{bundle}.json", f"bundles/{bundle}.json.bak", "bundles/not-an-id.json"):
        origin.store.put_if_absent(key, descriptor)
    slot = origin.store.get(f.label_key("prod", 1))
    for name in ("~x", ".hidden", bundle, "a@b"):
        origin.store.put_if_absent(f.label_key(name, 1), slot)
    caplog.set_level(logging.WARNING, logger="argonfs.remote.reading")
    reader = reading.Remote(open_store(origin.url))
    for _ in range(3):
        assert reader.bundle_ids() == [bundle]
        assert reader.label_names() == ["prod"]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 7 and all("skipped" in line for line in skipped), skipped
    assert any(f"bundles/sub/{bundle}.json" in line for line in skipped)

    good = _papers(origin, bundle)
    for collections in (
        {"..": good},
        {"a/b": good},
        {"a\x00b": good},
        {"papers": [[".", *good[0][1:]], *good[1:]]},
        {"papers": [["", *good[0][1:]], *good[1:]]},
        {"papers": [*good[:1], ["1/2", *good[1][1:]], *good[2:]]},
        {"papers": [*good[:1], ["1\x002", *good[1][1:]], *good[2:]]},
    ):
        bundle_id = crafted.one_layer(origin, collections)
        with pytest.raises(ArgonError) as info:
            within(lambda: pull(repo, reading.Remote(open_store(origin.url)), bundle_id))  # noqa: B023
        assert info.value.exit_code == 4, (collections.keys(), info.value)
        with pytest.raises(NotFound):
            repo.bundle(bundle_id)


# ---------------------------------------------------------------------- the cache


def test_the_cache_bound_counts_files_as_well_as_bytes(tmp_path: Path) -> None:
    """Each file counts at least FILE_COST against the bound, and nothing empty is kept:
    10,000 tiny entries leave at most bound / FILE_COST files (the old cache, counting
    bytes only, kept all of them, and every empty one)."""
    cache = Cache(tmp_path / "cache", 64 * FILE_COST)
    for i in range(10_000):
        cache.put(f"tiny-{i}", b"x")
        cache.put(f"empty-{i}", b"")
    files = list(cache.root.iterdir())
    assert 0 < len(files) <= 64 and not any(p.name.startswith("empty-") for p in files)
    assert cache.get("tiny-9999") == b"x"  # the newest stay
    again = Cache(tmp_path / "cache", 64 * FILE_COST)  # a new process counts the files too
    for i in range(64):
        again.put(f"more-{i}", b"y")
    assert len(list(cache.root.iterdir())) <= 64
