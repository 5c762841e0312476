"""The store against a simple model: each branch a dict of collections of documents."""

from __future__ import annotations

import copy
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argonfs.errors import NotFound
from argonfs.store import Repository
from argonfs.store.db.mongo import client

BRANCHES = ["main", "a", "b"]
COLLECTIONS = ["c1", "c2"]
KEYS = ["k0", "k1", "k2", "k3"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(BRANCHES), st.sampled_from(COLLECTIONS), st.sampled_from(KEYS), st.integers(0, 9)),
        st.tuples(st.just("del"), st.sampled_from(BRANCHES), st.sampled_from(COLLECTIONS), st.sampled_from(KEYS)),
        st.tuples(st.just("drop"), st.sampled_from(BRANCHES), st.sampled_from(COLLECTIONS)),
        st.tuples(st.just("mkcol"), st.sampled_from(BRANCHES), st.sampled_from(COLLECTIONS)),
        st.tuples(st.just("fork"), st.sampled_from(BRANCHES), st.sampled_from(BRANCHES)),
        st.tuples(st.just("bundle"), st.sampled_from(BRANCHES)),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_store_matches_model(mongo_uri: str, script: list) -> None:
    name = f"argonfs_model_{uuid.uuid4().hex[:10]}"
    repo = Repository.open(mongo_uri, name, author="model")
    repo.init()
    model: dict[str, dict[str, dict[str, int]]] = {"main": {}}
    frozen: list[tuple[str, dict]] = []
    try:
        for op in script:
            kind, branch = op[0], op[1]
            if branch not in model:
                continue
            state = model[branch]
            if kind == "put":
                _, _, c, k, val = op
                repo.put(branch, c, {"_id": k, "v": val})
                state.setdefault(c, {})[k] = val
            elif kind == "del":
                _, _, c, k = op
                if k in state.get(c, {}):
                    repo.delete(branch, c, k)
                    del state[c][k]
            elif kind == "drop" and op[2] in state:
                repo.drop_collection(branch, op[2])
                del state[op[2]]
            elif kind == "mkcol" and op[2] not in state:
                repo.create_collection(branch, op[2])
                state[op[2]] = {}
            elif kind == "fork" and op[2] not in model:
                repo.create_branch(op[2], branch)
                model[op[2]] = copy.deepcopy(state)
            elif kind == "bundle":
                frozen.append((repo.create_bundle(branch, "m").id, copy.deepcopy(state)))
        views = [(b, s) for b, s in model.items()] + frozen
        for ref, state in views:
            assert repo.collections(ref) == sorted(state)
            for c in COLLECTIONS:
                if c not in state:
                    continue
                assert {d.stem: d.doc["v"] for d in repo.documents(ref, c)} == state[c]
                for k in KEYS:
                    if k in state[c]:
                        assert repo.get(ref, c, k).doc["v"] == state[c][k]
                    else:
                        try:
                            repo.get(ref, c, k)
                            raise AssertionError(f"{ref}/{c}/{k} should not exist")
                        except NotFound:
                            pass
    finally:
        client(mongo_uri).drop_database(name)
