"""Bytes written are the bytes read: JSON copied into a collection through the mount
reads back byte for byte (its own whitespace and key order), with that size, after a
remount too, and rsync's quick check finds nothing to send the second time."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from argonfs import codec

DOCS = {
    "4.json": json.dumps({"_id": 4, "title": "pretty", "tags": ["a", "b"], "n": {"x": 1.5}}, indent=4) + "\n",
    "5.json": json.dumps({"title": "id last", "n": 2, "_id": 5}, indent=1),
    "ada.json": '{"name":"Ada","born":1815}',  # no _id: the name gives it
    "6.json": json.dumps({"_id": 6, "zeta": 1, "alpha": 2}, separators=(",", ":"), ensure_ascii=True) + "\n",
}


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name, text in DOCS.items():
        (src / name).write_text(text)
    return src


def _assert_same(src: Path, dst: Path) -> None:
    assert set(DOCS) <= set(os.listdir(dst))
    for name in DOCS:
        subprocess.run(["cmp", str(src / name), str(dst / name)], check=True)
        assert os.stat(dst / name).st_size == os.stat(src / name).st_size  # ls -l's size, from the listing


def test_copied_json_reads_back_byte_for_byte_after_a_remount(repo, mount_factory, tmp_path):
    src = _source(tmp_path)
    m = mount_factory()
    coll = m / "branches/main/kept"
    os.mkdir(coll)
    subprocess.run(["cp", *(str(src / n) for n in DOCS), str(coll)], check=True)
    _assert_same(src, coll)
    # the store holds the documents, and their versions read as the bytes written
    assert repo.get("main", "kept", "4").doc["tags"] == ["a", "b"]
    assert repo.get("main", "kept", "ada").doc == {"_id": "ada", "name": "Ada", "born": 1815}
    assert repo.get("main", "kept", "5").rendered == DOCS["5.json"].encode()
    # a document written through the API renders canonically
    repo.put("main", "kept", {"_id": 7, "b": 1})
    mount_factory.stop(m)

    again = mount_factory() / "branches/main/kept"
    _assert_same(src, again)
    assert (again / "7.json").read_bytes() == codec.render({"_id": 7, "b": 1})
    # rewriting the same document with other whitespace is a write of those bytes
    (again / "4.json").write_text(DOCS["4.json"].replace("    ", "\t"))
    assert (again / "4.json").read_text() == DOCS["4.json"].replace("    ", "\t")
    assert repo.get("main", "kept", "4").doc == json.loads(DOCS["4.json"])


def _rsync(src: Path, dst: Path) -> tuple[int, list[str]]:
    """Files rsync -a transferred (from --stats) and its itemized changes to files."""
    out = subprocess.run(["rsync", "-a", "-i", "--stats", f"{src}/", f"{dst}/"], check=True, capture_output=True, text=True).stdout
    found = re.search(r"Number of regular files transferred: (\d+)", out)
    assert found, out
    return int(found.group(1)), [line for line in out.splitlines() if line.startswith((">f", "<f", "cf"))]


def test_rsync_of_pretty_json_twice_transfers_nothing_the_second_time(repo, mount_factory, tmp_path):
    src = _source(tmp_path)
    m = mount_factory()
    dst = m / "branches/main/synced"
    assert _rsync(src, dst)[0] == len(DOCS)
    _assert_same(src, dst)
    seq = repo.pin(repo.resolve("main")).seq
    assert _rsync(src, dst) == (0, [])
    mount_factory.stop(m)
    dst = mount_factory() / "branches/main/synced"
    assert _rsync(src, dst) == (0, [])
    assert repo.pin(repo.resolve("main")).seq == seq  # nothing was written again
