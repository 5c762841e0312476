"""What every part of a repository stands on: its shared state, and refs turned into views.

``Views`` owns the state the parts of ``Repository`` share (the database, the author,
and the per-process caches of branch records, heads and catalogued collections), the
format check on first use and the repository's meta record, and ``resolve``: a ref (a
bundle id, a branch or a label, in that order, or ``branch@SEQ``, ``branch@TIME``) becomes a ``View``, the
chain of layers to read, pinned to the branch's current head when asked.  refs.py,
documents.py, history.py and readlog.py build on it.  Blocking (pymongo).
"""

from __future__ import annotations

from typing import Any

from bson.objectid import ObjectId

from argonfs.errors import NotFound, ReadOnly
from argonfs.naming import parse_ref, resolve_name
from argonfs.store.db.mongo import Db, translating
from argonfs.store.engine import lookup
from argonfs.store.engine import migrations as fmt
from argonfs.store.engine import versions as v
from argonfs.store.repo.model import View


class Views:
    """The shared state of a repository and the resolution of refs; see ``Repository``."""

    def __init__(self, db: Db, *, author: str | None = None, where: str = "MongoDB", server: str = "") -> None:
        from argonfs.config import default_author

        self.db = db
        self.where = where
        self.server = server
        self.author = author or default_author()
        self._versions = db["versions"]
        self._branches: dict[ObjectId, dict[str, Any]] = {}
        self._catalogued: set[tuple[ObjectId, str]] = set()
        self._populated: dict[tuple[Any, ...], int | None] = {}  # see reading.exists
        self._heads: dict[ObjectId, int] = {}
        self._format_checked = True  # Repository.open checks, on first use
        self._meta: dict[str, Any] | None = None  # the meta record the format check read

    def _check_format(self) -> None:
        """Refuse a repository of another format; asked once, on first use (opening
        does no I/O)."""
        if not self._format_checked:
            self._meta = fmt.check(self.db)
            self._format_checked = True

    @translating
    def info(self) -> dict[str, Any]:
        self._check_format()
        meta = self.db["meta"].find_one({"_id": "repo"})
        if meta is None:
            raise NotFound(f"no argonfs repository named {self.db.name!r} at {self.where}; run 'argonfs init'")
        return meta

    @property
    def default_branch(self) -> str:
        # written once by init and never changed: the format check's read of meta says it
        self._check_format()
        meta = self._meta if self._meta is not None else self.info()
        name: str = meta["default_branch"]
        return name

    def _branch_record(self, bid: ObjectId) -> dict[str, Any]:
        rec = self._branches.get(bid)
        if rec is None:
            rec = self.db["branches"].find_one({"_id": bid})
            if rec is None:
                raise NotFound(f"branch id {bid} is missing from the repository")
            v.note_hint(self._versions, bid, rec.get(v.HINT))  # the one field that changes: a head search starts there
            self._branches[bid] = rec  # branch records never change (but for the hint, which is only a hint)
        return rec

    def _branch_id(self, name: str) -> ObjectId:
        self._check_format()
        row = self.db["branch_names"].find_one({"_id": name})
        if row is None:
            self.info()  # a clearer error when the repository itself is missing
            raise NotFound(f"unknown branch {name!r}")
        bid: ObjectId = row["bid"]
        return bid

    def _chain(self, bid: ObjectId, seq: int | None) -> tuple[v.Layer, ...]:
        chain: list[v.Layer] = [(bid, seq)]
        rec = self._branch_record(bid)
        while rec["parent"] is not None:
            chain.append((rec["parent"], rec["fork"]))
            rec = self._branch_record(rec["parent"])
        return tuple(chain)

    def _head(self, bid: ObjectId) -> int:
        if bid not in self._heads:
            self._branch_record(bid)  # once per repository object: its head hint is where the search starts
        seq = v.head(self._versions, bid, self._heads.get(bid, 0))
        self._heads[bid] = seq
        return seq

    @translating
    def resolve(self, ref: str) -> View:
        """Resolve ``branch@SEQ``, ``branch@TIME``, or a name: a bundle id, a branch or a
        label, in the one order of ``names.resolve_name``."""
        self._check_format()
        spec = parse_ref(ref)
        if spec.time is not None:
            bid = self._branch_id(spec.name)
            if spec.time < self._branch_record(bid)["created"]:
                raise NotFound(f"branch {spec.name!r} did not exist yet at {spec.time.isoformat()}Z")
            seq = lookup.seq_at(self._versions, bid, self._head(bid), spec.time)
            return View(ref, self._chain(bid, seq), "seq", branch=spec.name)
        if spec.seq is not None:
            bid = self._branch_id(spec.name)
            top = self._head(bid)
            if spec.seq > top:
                raise NotFound(f"branch {spec.name!r} has no version {spec.seq} (its newest is {top})")
            return View(ref, self._chain(bid, spec.seq), "seq", branch=spec.name)
        view = resolve_name(ref, bundle=self._bundle_view, branch=self._branch_view, label=self._label_view)
        if view is None:
            self.info()
            raise NotFound(f"unknown ref {ref!r}: no bundle, branch or label has that name")
        return view

    def _bundle_view(self, name: str) -> View | None:
        bundle = self.db["bundles"].find_one({"_id": name})
        return None if bundle is None else View(name, self._chain(bundle["b"], bundle["s"]), "bundle", bundle=name)

    def _branch_view(self, name: str) -> View | None:
        row = self.db["branch_names"].find_one({"_id": name})
        return None if row is None else View(name, self._chain(row["bid"], None), "branch", branch=name)

    def _label_view(self, name: str) -> View | None:
        label = self.db["labels"].find_one({"_id": name})
        if label is None:
            return None
        bundle = self.db["bundles"].find_one({"_id": label["bundle"]})
        return None if bundle is None else View(name, self._chain(bundle["b"], bundle["s"]), "label", bundle=label["bundle"])

    def _view(self, ref: str | View) -> View:
        """A view as given, or the ref resolved."""
        return self.resolve(ref) if isinstance(ref, str) else ref

    def _pin(self, view: View) -> View:
        """The same view with a live branch head replaced by its current seq."""
        if view.seq is not None:
            return view
        seq = self._head(view.branch_id)
        return View(view.ref, ((view.branch_id, seq), *view.chain[1:]), view.kind, view.branch, view.bundle)

    @translating
    def pin(self, ref: str | View) -> View:
        return self._pin(self._view(ref))

    def _writable(self, ref: str | View) -> View:
        view = self._view(ref)
        if not view.writable:
            raise ReadOnly(f"{view.ref!r} is a read-only {view.kind}; write to a branch")
        return view
