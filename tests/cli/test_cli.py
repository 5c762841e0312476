"""The CLI through click's runner: the newcomer's whole path, --json, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from argonfs.cli import main


@pytest.fixture
def run(mongo_uri: str, repo_name: str):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, code: int = 0) -> str:
        result = runner.invoke(main, ["--mongo", mongo_uri, "--repo", repo_name, *args], input=input)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.stdout if code == 0 else result.stderr

    invoke("init")
    return invoke


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "people").mkdir(parents=True)
    (src / "people" / "ada.json").write_text('{"name": "Ada", "born": {"$date": "1815-12-10T00:00:00Z"}}')
    (src / "people" / "alan.json").write_text('{"_id": "alan", "name": "Alan"}')
    (src / "events.jsonl").write_text('{"_id": 1, "t": "a"}\n\n{"_id": 2, "t": "b"}\n')
    (src / "tags.json").write_text('[{"_id": "x"}, {"_id": "y"}]')
    return src


def test_newcomer_path(run, source: Path, tmp_path: Path) -> None:
    out = run("import", str(source))
    assert "people: 2 added" in out and "events: 2 added" in out and "tags: 2 added" in out
    assert "people: 0 added, 0 updated, 2 unchanged" in run("import", str(source))
    # an imported document's history names the import, as the branch's log does
    assert [r["op"] for r in json.loads(run("log", "main", "-c", "people", "--id", "alan", "--json"))] == ["put (import)"]
    assert "put (import)" in run("log", "main", "-c", "people", "--id", "alan") and "(None)" not in run("log", "main", "-c", "people", "--id", "alan")
    run("branch", "create", "exp")
    run("put", "exp", "people", "-", input='{"_id": "ada", "name": "Ada Lovelace"}')
    run("rm", "exp", "people", "alan.json")
    assert json.loads(run("cat", "main", "people", "ada"))["name"] == "Ada"
    assert json.loads(run("cat", "exp", "people", "ada.json"))["name"] == "Ada Lovelace"
    assert [r["name"] for r in json.loads(run("ls", "main", "people", "--json"))] == ["ada.json", "alan.json"]
    assert [r["name"] for r in json.loads(run("ls", "exp", "people", "--json"))] == ["ada.json"]
    bundle = run("bundle", "create", "exp", "-m", "first", "--label", "prod").strip()
    assert json.loads(run("bundle", "show", bundle, "--json"))["labels"] == ["prod"]
    assert json.loads(run("label", "list", "--json"))[0]["bundle"] == bundle
    out_dir = tmp_path / "out"
    run("export", "prod", str(out_dir))
    assert sorted(p.name for p in (out_dir / "people").iterdir()) == ["ada.json"]
    assert json.loads((out_dir / "people" / "ada.json").read_text())["name"] == "Ada Lovelace"
    assert sorted(p.name for p in (out_dir / "events").iterdir()) == ["1.json", "2.json"]
    # the exported directory imports back unchanged
    run("branch", "create", "copy", "--from", "main@0")
    assert "people: 1 added" in run("import", str(out_dir), "--branch", "copy")


def test_lists_and_history_as_json(run) -> None:
    run("put", "main", "c", "-", input='{"_id": 1}')
    b1 = run("bundle", "create", "main", "-m", "one").strip()
    b2 = run("bundle", "create", "main", "-m", "two").strip()
    run("label", "set", "prod", b1)
    run("label", "set", "prod", b2)
    assert [h["bundle"] for h in json.loads(run("label", "history", "prod", "--json"))] == [b2, b1]
    assert [b["id"] for b in json.loads(run("bundle", "list", "--json"))] == [b2, b1]
    run("branch", "create", "x", "--from", "prod")
    branches = {b["name"]: b for b in json.loads(run("branch", "list", "--json"))}
    assert branches["x"]["parent"] == "main" and branches["x"]["fork_seq"] == 1
    run("label", "delete", "prod")
    assert json.loads(run("label", "list", "--json")) == []
    status = json.loads(run("status", "--json"))
    assert status["server"] == "external" and status["branches"] == 2


def test_collections_and_time_travel(run) -> None:
    run("put", "main", "c", "-", input='{"_id": 1, "v": 1}')
    run("put", "main", "c", "-", input='{"_id": 1, "v": 2}')
    assert json.loads(run("cat", "main@1", "c", "1"))["v"] == 1
    run("collection", "create", "main", "empty")
    assert run("ls", "main").split() == ["c", "empty"]
    run("collection", "drop", "main", "c")
    assert run("ls", "main").split() == ["empty"]
    assert run("ls", "main@2").split() == ["c"]


@pytest.mark.parametrize(
    "args, stdin, code, message",
    [
        (("cat", "nope", "c", "1"), None, 2, "unknown ref 'nope'"),
        (("branch", "create", "a/b"), None, 4, "must not contain '/'"),
        (("branch", "create", "main"), None, 3, "already exists"),
        (("put", "main", "c", "-"), "[1, 2]", 4, "must be a JSON object"),
        (("put", "main", "c", "-"), '{"_id": 1', 4, "invalid JSON"),
        (("cat", "main", "c", "404"), None, 2, "no document '404.json'"),
        (("branch", "delete", "main"), None, 6, "default branch"),
        (("label", "set", "x", "nosuch"), None, 2, "unknown bundle"),
    ],
)
def test_user_errors_are_one_line(run, args, stdin, code, message) -> None:
    err = run(*args, input=stdin, code=code)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_writes_to_bundles_are_refused(run) -> None:
    run("put", "main", "c", "-", input='{"_id": 1}')
    b = run("bundle", "create", "main", "-m", "m").strip()
    assert "read-only bundle" in run("put", b, "c", "-", input='{"_id": 2}', code=5)
    assert "read-only" in run("rm", "main@1", "c", "1", code=5)
    assert run("ls", b, "c").count(".json") == 1


def test_a_re_import_of_unchanged_files_reads_nothing(run, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argonfs.store.repo import transfer

    assert transfer.fingerprint([source / "events.jsonl"]) is None  # just written: too recent to trust
    monkeypatch.setattr(transfer, "RACY_NS", 0)

    def quick(*args: str) -> dict[str, tuple[bool, int, int]]:
        return {c: (r["quick"], r["updated"], r["unchanged"]) for c, r in json.loads(run("import", str(source), "--json", *args)).items()}

    assert quick() == {"events": (False, 0, 0), "people": (False, 0, 0), "tags": (False, 0, 0)}
    with monkeypatch.context() as m:
        m.setattr(transfer, "_parse_at", lambda *a: pytest.fail("a quick re-import read a file"))
        assert quick() == {"events": (True, 0, 2), "people": (True, 0, 2), "tags": (True, 0, 2)}
        assert "events: 0 added, 0 updated, 2 unchanged (from" in run("import", str(source / "events.jsonl"))
    run("put", "main", "people", "-", input='{"_id": "alan", "name": "changed in the branch"}')
    (source / "events.jsonl").write_text('{"_id": 1, "t": "c"}\n\n{"_id": 2, "t": "b"}\n')  # same size
    assert quick() == {"events": (False, 1, 1), "people": (False, 1, 1), "tags": (True, 0, 2)}
    assert quick() == {"events": (True, 0, 2), "people": (True, 0, 2), "tags": (True, 0, 2)}
    assert quick("--checksum") == {"events": (False, 0, 2), "people": (False, 0, 2), "tags": (False, 0, 2)}
    (source / "people" / "grace.json").write_text('{"name": "Grace"}')
    assert quick()["people"] == (False, 0, 2)
    run("branch", "create", "other", "--from", "main@0")
    assert quick("--branch", "other")["tags"] == (False, 0, 0)


def test_import_errors_name_the_file(run, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    (bad / "c").mkdir(parents=True)
    (bad / "c" / "a.json").write_text('{"_id": "b"}')
    assert "a.json" in run("import", str(bad), code=4)
    (bad / "c" / "a.json").write_text('{"_id": "a"')
    assert "invalid JSON" in run("import", str(bad), code=4)


def test_import_and_export_through_mongodb(run, mongo_uri: str, repo_name: str) -> None:
    from argonfs.store.db.mongo import client

    src_db = repo_name + "_src"
    dst_db = repo_name + "_dst"
    c = client(mongo_uri)
    try:
        c[src_db]["people"].insert_many([{"_id": i, "n": i} for i in range(30)])
        c[src_db]["other"].insert_one({"_id": "x"})
        base = mongo_uri.rstrip("/")
        assert "people: 30 added" in run("import", f"{base}/{src_db}")
        assert "renamed: 30 added" in run("import", f"{base}/{src_db}.people", "--collection", "renamed")
        run("export", "main", f"{base}/{dst_db}")
        assert c[dst_db]["people"].count_documents({}) == 30
        assert c[dst_db]["renamed"].find_one({"_id": 7}) == {"_id": 7, "n": 7}
        assert "already has documents" in run("export", "main", f"{base}/{dst_db}", code=3)
        run("export", "main", f"{base}/{dst_db}", "--force")
        assert c[dst_db]["other"].count_documents({}) == 1
    finally:
        c.drop_database(src_db)
        c.drop_database(dst_db)


def test_import_progress_lines_end_without_padding(run, mongo_uri: str, repo_name: str, source: Path) -> None:
    result = CliRunner().invoke(main, ["--mongo", mongo_uri, "--repo", repo_name, "import", str(source)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines and all(line == line.rstrip() for line in lines), lines


def test_log_command(run, repo) -> None:
    repo.put("main", "people", {"_id": "ada"})
    repo.put("main", "people", {"_id": "bob"})
    repo.delete("main", "people", "ada")
    out = run("log", "main")
    lines = out.splitlines()
    assert lines[0].split() == ["VERSION", "SLOT", "TIME", "(UTC)", "AUTHOR", "OP", "COLLECTION", "ID"]
    assert lines[1].split()[0] == "main@3" and "delete" in lines[1] and "ada.json" in lines[1]
    rows = json.loads(run("log", "main", "-c", "people", "--id", "ada.json", "--json"))
    assert [(r["seq"], r["op"]) for r in rows] == [(3, "delete"), (1, "put")]
    assert len(json.loads(run("log", "main", "-n", "1", "--json"))) == 1
    at = repo.get("main", "people", "bob").time.isoformat() + "Z"
    assert "ada.json" in run("ls", f"main@{at}", "people")


def test_every_logged_version_of_a_batch_is_read_by_what_log_prints(run, repo) -> None:
    from argonfs.store.repo.model import Change

    repo.put("main", "c", {"_id": "n", "v": 0})
    commit = repo.apply("main", [Change("put", "c", "n", {"_id": "n", "v": i}) for i in range(1, 5)], kind="capture")
    rows = json.loads(run("log", "main", "-c", "c", "--id", "n.json", "--json"))
    assert [r["seq"] for r in rows] == [commit] * 4 + [1]
    values = [json.loads(run("cat", f"{r['branch']}@{r['seq']}", "c", "n.json", "--slot", str(r["slot"])))["v"] for r in rows]
    assert values == [4, 3, 2, 1, 0]
    assert json.loads(run("cat", f"main@{commit}", "c", "n.json"))["v"] == 4  # the seq shows the batch
    assert "no version in slot" in run("cat", f"main@{commit - 1}", "c", "n.json", "--slot", str(rows[1]["slot"]), code=2)
    table = run("log", "main", "-c", "c", "--id", "n").splitlines()
    assert [line.split()[:2] for line in table[1:]] == [[f"main@{r['seq']}", str(r["slot"])] for r in rows]


def test_diff_command(run, repo) -> None:
    repo.put("main", "people", {"_id": "ada", "born": 1815, "tags": ["math"]})
    repo.put("main", "people", {"_id": "bob"})
    repo.create_branch("b")
    repo.put("b", "people", {"_id": "ada", "born": 1816, "tags": ["math", "poetry"]})
    repo.delete("b", "people", "bob")
    repo.put("b", "people", {"_id": "cy"})
    out = run("diff", "main", "b")
    assert out.splitlines() == [
        "~ people/ada.json",
        "    born: 1815 -> 1816",
        '    tags: ["math"] -> ["math", "poetry"]',
        "- people/bob.json",
        "+ people/cy.json",
    ]
    assert run("diff", "main", "b", "--stat").strip() == "people: 1 added, 1 removed, 1 modified"
    rows = json.loads(run("diff", "main", "b", "-c", "people", "--json"))
    assert rows[0]["fields"] == [
        {"path": "born", "change": "modified", "old": 1815, "new": 1816},
        {"path": "tags", "change": "modified", "old": ["math"], "new": ["math", "poetry"]},
    ]
    assert run("diff", "b", "b") == ""


def test_merge_and_revert_commands(run, repo) -> None:
    repo.put("main", "c", {"_id": 1, "a": 1, "b": 1})
    repo.create_branch("f")
    repo.put("f", "c", {"_id": 1, "a": 2, "b": 1})
    repo.put("main", "c", {"_id": 1, "a": 3, "b": 1})
    out = run("merge", "f", "main", code=6)
    assert "1 conflict(s): nothing changed" in out
    dry = run("merge", "f", "main", "--strategy", "ours", "--dry-run")
    assert dry.splitlines()[0] == "CONFLICT field         c/1.json a: base 1, ours 3, theirs 2"
    assert dry.splitlines()[1].startswith("would merge f into main (base main@1)")
    assert repo.get("main", "c", "1").doc["a"] == 3
    report = json.loads(run("merge", "f", "main", "--strategy", "theirs", "--json"))
    assert report["applied"] and report["updated"] == 1 and report["conflicts"][0]["path"] == "a"
    assert repo.get("main", "c", "1").doc["a"] == 2
    newest = run("log", "main", "-n", "2").splitlines()
    assert newest[1].split()[5] == "MERGE" and "put (merge)" in newest[2]
    out = run("revert", "main", "--to", "2")
    assert out.startswith("reverted main to main@2: 0 restored, 1 updated, 0 deleted; now main@")
    assert repo.get("main", "c", "1").doc["a"] == 3


def test_merge_preview_names_every_document(run, repo) -> None:
    for doc in ({"_id": 1, "a": 1}, {"_id": 2, "a": 1}, {"_id": 3, "a": 1}):
        repo.put("main", "c", doc)
    repo.put("main", "d", {"_id": "k", "n": {"x": 1}})
    repo.create_branch("f")
    repo.put("f", "c", {"_id": 2, "a": 2})
    repo.delete("f", "c", "3")
    repo.put("f", "c", {"_id": 4})
    repo.put("f", "d", {"_id": "new"})
    repo.put("f", "d", {"_id": "k", "n": {"x": 2}})
    repo.put("main", "d", {"_id": "k", "n": {"x": 3}})
    head = repo.head("main")
    report = json.loads(run("merge", "f", "main", "--dry-run", "--strategy", "ours", "--json"))
    assert (report["added"], report["updated"], report["deleted"]) == (2, 1, 1)
    assert sorted((r["collection"], r["id"], r["change"]) for r in report["documents"]) == [
        ("c", "2", "updated"),
        ("c", "3", "deleted"),
        ("c", "4", "added"),
        ("d", "new", "added"),
    ]
    assert report["conflicts"] == [{"collection": "d", "id": "k", "kind": "field", "path": "n.x", "base": 1, "ours": 3, "theirs": 2}]
    assert not report["applied"] and repo.head("main") == head
    text = run("merge", "f", "main", "--dry-run", "--strategy", "ours").splitlines()
    assert sorted(text[1:-1]) == ["+ c/4.json", "+ d/new.json", "- c/3.json", "~ c/2.json"]
    assert text[0].startswith("CONFLICT field") and text[-1].startswith("would merge f into main")
    applied = json.loads(run("merge", "f", "main", "--strategy", "theirs", "--json"))
    assert sorted((r["collection"], r["id"], r["change"]) for r in applied["documents"]) == [
        ("c", "2", "updated"),
        ("c", "3", "deleted"),
        ("c", "4", "added"),
        ("d", "k", "updated"),
        ("d", "new", "added"),
    ]


def test_readlog_command(run, repo) -> None:
    from datetime import datetime

    repo.record_reads(
        [
            {"user": "ana", "ref": "main", "top": "branches", "c": "c", "k": "1", "t": datetime(2026, 1, 1, 10)},
            {"user": "bob", "ref": "main", "top": "branches", "c": "c", "k": "2", "t": datetime(2026, 1, 2, 10)},
            {"user": "ana", "ref": "b1", "top": "bundles", "c": "c", "k": "3", "t": datetime(2026, 1, 3, 10)},
        ]
    )
    lines = run("readlog").splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "USER", "REF", "COLLECTION", "ID"]
    assert [ln.split()[2] for ln in lines[1:]] == ["ana", "bob", "ana"]  # newest first
    rows = json.loads(run("readlog", "main", "--since", "2026-01-02T00:00:00Z", "--json"))
    assert [(r["user"], r["id"]) for r in rows] == [("bob", "2")]
    assert "not an ISO 8601 time" in run("readlog", "--since", "soon", code=2)


def test_protected_branches(run) -> None:
    run("put", "main", "c", "-", input='{"_id": 1, "v": "old"}')
    run("branch", "create", "feature")
    run("put", "feature", "c", "-", input='{"_id": 1, "v": "new"}')
    assert "now protected" in run("branch", "protect", "main")
    rows = {r["name"]: r["protected"] for r in json.loads(run("branch", "list", "--json"))}
    assert rows == {"feature": False, "main": True}
    assert "PROTECTED" in run("branch", "list")
    for args, stdin in ((("put", "main", "c", "-"), '{"_id": 2}'), (("rm", "main", "c", "1"), None), (("collection", "create", "main", "e"), None)):
        err = run(*args, input=stdin, code=5)
        assert "branch 'main' is protected" in err and err.count("\n") == 1
    assert '"old"' in run("cat", "main", "c", "1")
    assert "1 updated" in run("merge", "feature", "main")
    assert "MERGE" in run("log", "main", "-n", "1")
    assert "no longer protected" in run("branch", "unprotect", "main")
    run("put", "main", "c", "-", input='{"_id": 2}')


def test_init_protect_main_and_upgrade(mongo_uri: str, repo_name: str) -> None:
    from argonfs.store.db.mongo import client

    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, ["--mongo", mongo_uri, "--repo", repo_name, *args], input='{"_id": 1}')
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.stdout if code == 0 else result.stderr

    assert "branch 'main' is protected" in cli("init", "--protect-main")
    assert "is protected" in cli("put", "main", "c", "-", code=5)
    client(mongo_uri)[repo_name]["meta"].update_one({"_id": "repo"}, {"$set": {"format": 1}})
    err = cli("ls", "main", code=8)
    assert "run 'argonfs upgrade'" in err and err.count("\n") == 1
    assert "format 1 -> 2" in cli("upgrade", "--dry-run")
    assert "upgraded repository" in cli("upgrade")
    assert "nothing to do" in cli("upgrade")
    assert "format 5" in cli("status")


def test_gc_command(run) -> None:
    run("branch", "create", "gone")
    run("put", "gone", "c", "-", input='{"_id": 1, "v": "payload"}')
    run("branch", "delete", "gone")
    out = json.loads(run("gc", "--json"))
    assert out["records"] == 0 and [w["branch"] for w in out["waiting"]] == ["gone"]
    assert "would reclaim 1 versions" in run("gc", "--dry-run", "--grace", "0s")
    assert json.loads(run("gc", "--grace", "0", "--json"))["by_reason"]["deleted branches"]["records"] == 1
    assert "reclaimed 0 versions" in run("gc", "--grace", "0")
    err = run("gc", "--min-age", "soon", code=2)
    assert "is not a duration" in err
