"""The mount against a model: a dict of documents per collection, and the bytes each
file reads as (the bytes written), driven by hypothesis through ordinary file
operations (write, overwrite, invalid write, rename, delete)."""

from __future__ import annotations

import errno
import json
import os
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ids = st.integers(min_value=0, max_value=6)
values = st.dictionaries(st.sampled_from("abc"), st.integers(-5, 5) | st.text("xyz", max_size=3), max_size=3)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), ids, values),
        st.tuples(st.just("invalid"), ids, st.sampled_from([b"{", b"[]", b'{"_id": "other"}'])),
        st.tuples(st.just("rename"), ids, ids),
        st.tuples(st.just("delete"), ids, st.none()),
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_mount_matches_a_dict_model(repo, mnt, steps):
    coll = "m" + uuid.uuid4().hex[:8]
    base = mnt / "branches/main" / coll
    os.mkdir(base)
    model: dict[int, dict] = {}
    files: dict[int, bytes] = {}  # what each file reads as: the bytes written (docs/mount.md)
    for op, a, b in steps:
        path = base / f"{a}.json"
        if op == "write":
            path.write_text(json.dumps(b))
            model[a] = {"_id": a, **b}
            files[a] = json.dumps(b).encode()
        elif op == "invalid":
            try:
                with open(path, "wb") as f:
                    f.write(b)
            except OSError as exc:
                assert exc.errno == errno.EINVAL
            else:
                raise AssertionError("an invalid document was accepted")
        elif op == "rename":
            target = base / f"{b}.json"
            if a not in model:
                assert not path.exists()
                continue
            os.rename(path, target)
            if a != b:
                model[b] = {**model.pop(a), "_id": b}
                files[b] = files.pop(a)  # bytes without an _id move with the name
        elif op == "delete" and a in model:
            path.unlink()
            del model[a]
            del files[a]
        listing = sorted(os.listdir(base))
        assert listing == sorted(f"{k}.json" for k in model)
        for k, doc in model.items():
            data = (base / f"{k}.json").read_bytes()
            assert data == files[k] and {"_id": k, **json.loads(data)} == doc
            assert (base / f"{k}.json").stat().st_size == len(data)
    assert {e.stem: repo.get("main", coll, e.stem).doc for e in repo.entries("main", coll)} == {str(k): v for k, v in model.items()}
