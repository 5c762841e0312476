"""Kept bytes (docs/formats.md): a version written with JSON other than its rendering
reads as those bytes, with their size and hash; diff compares documents."""

from __future__ import annotations

import json

from argonfs import codec
from argonfs.store import Repository

DOC = {"_id": 1, "title": "t", "tags": ["a", "b"]}
PRETTY = json.dumps(DOC, indent=4).encode()


def test_a_put_with_other_bytes_reads_as_them(repo: Repository) -> None:
    written = repo.put("main", "c", DOC, raw=PRETTY)
    assert written.rendered == PRETTY and written.size == len(PRETTY) and written.hash == codec.content_hash(PRETTY)
    entry = repo.stat("main", "c", "1")
    assert (entry.size, entry.hash) == (len(PRETTY), codec.content_hash(PRETTY))
    assert repo.get("main", "c", "1").rendered == PRETTY
    assert [d.rendered for d in repo.documents("main", "c")] == [PRETTY]
    assert [d.rendered for d in repo.bodies("c", [entry])] == [PRETTY]
    # the same bytes again store nothing; the canonical ones are a new version
    assert not repo.put("main", "c", DOC, raw=PRETTY, if_changed=True).stored
    assert repo.put("main", "c", DOC, raw=codec.render(DOC), if_changed=True).stored
    assert repo.get("main", "c", "1").rendered == codec.render(DOC)
    newest = repo.db["versions"].find_one({"k": "1"}, sort=[("s", -1)])
    assert newest is not None and "w" not in newest


def test_bytes_that_are_not_the_document_are_not_kept(repo: Repository) -> None:
    other = json.dumps({**DOC, "title": "else"}).encode()
    assert repo.put("main", "c", DOC, raw=other).rendered == codec.render(DOC)
    assert repo.put("main", "c", DOC, raw=b"not json").rendered == codec.render(DOC)
    # without an _id, the name gives it: kept, and a rename keeps them too
    bare = b'{"title":"t","tags":["a","b"]}'
    assert repo.put("main", "c", {"title": "t", "tags": ["a", "b"]}, stem="1", raw=bare).rendered == bare
    moved, _ = repo.rename("main", "c", "1", "c", "2")
    assert moved.rendered == bare and repo.get("main", "c", "2").doc["_id"] == 2
    # bytes naming the old _id are not the renamed document's
    repo.put("main", "c", DOC, raw=PRETTY)
    moved, _ = repo.rename("main", "c", "1", "c", "3")
    assert moved.rendered == codec.render({**DOC, "_id": 3})


def test_diff_compares_documents_not_bytes(repo: Repository) -> None:
    repo.put("main", "c", DOC)
    repo.put("main", "c", {"_id": 2, "n": 1})
    before = repo.create_bundle("main", "before").id
    repo.put("main", "c", DOC, raw=PRETTY)  # only the bytes change
    repo.put("main", "c", {"_id": 2, "n": 2}, raw=b'{"_id": 2, "n": 2}')
    for fields in (True, False):
        changes = repo.diff(before, "main", fields=fields)
        assert [(ch.stem, ch.change) for ch in changes] == [("2", "modified")]
    assert [f.path for f in repo.diff(before, "main")[0].fields] == ["n"]
