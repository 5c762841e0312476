"""The commit of a file's buffer: one version at the node's current name (``_commit``),
at a close, flush or fsync (``_commit_node``), what the last writer's close leaves
(``_settle``), and the files whose changes are not committed yet (``unsaved``)."""

from __future__ import annotations

from argonfs import codec
from argonfs.errors import ArgonError, InvalidDocument
from argonfs.fs.base import FsBase, _branch, _is_document
from argonfs.fs.handles import FileHandle
from argonfs.fs.nodes import Node, Path
from argonfs.fs.seam import log
from argonfs.snapshot import Written


class Commits(FsBase):
    async def _commit_node(self, node: Node, author: str | None, *, others: bool) -> None:
        """Commit a node's buffer as one version, to the node's current name.  Bad
        content leaves the previous version and fails the close with EINVAL, unless
        other writers still have the file open: they may be half-way through writing
        it, so the last of them commits (or fails)."""
        if not node.dirty or node.unlinked or node.data is None:
            return
        if not _is_document(node.path):
            node.dirty = False  # a temporary: nothing to store
            return
        if node.scratch is not None and not node.data:
            return  # a new document with no content yet stays a scratch file
        node.dirty = False
        try:
            await self._commit(node, bytes(node.data), author, node.mtime_ns)
        except InvalidDocument:
            if others:
                node.dirty = True
                return
            if node.scratch is not None:  # nothing was ever stored: the new name goes away
                self._remove_scratch(node)
            else:
                self.invalidator.inode(node.ino)  # the kernel cached the rejected bytes
            raise
        except ArgonError:
            node.dirty = True
            raise

    def _settle(self, node: Node) -> None:
        """The last writer closed: a stored document's bytes leave memory (reads are
        served from the store again), and the kernel forgets pages that differ from the
        committed rendering."""
        if node.scratch is not None or node.data is None:
            return
        node.data = None
        node.dirty = False
        node.mtime_ns = None
        node.former_stems = ()
        if node.unlinked:
            return
        if node.info.get("served") != node.info.get("slot"):
            self.invalidator.inode(node.ino)  # a new version: the kernel's size and pages are the old one's

    async def _commit(self, node: Node, data: bytes, author: str | None, mtime: int | None = None, *, path: Path | None = None) -> Written:
        """Store ``data`` as the document the node's name (or ``path``, for a rename) says;
        no new version when the content and time are unchanged."""
        path = path or node.path
        stem = codec.filename_to_stem(path[3])
        if stem is None:
            raise InvalidDocument(f"{path[3]!r} is not a document name")
        branch = _branch(await self._view(path))
        try:
            doc = codec.parse(data)
            if node.former_stems and "_id" in doc and codec.id_to_stem(doc["_id"]) in node.former_stems and not codec.is_hashed_stem(stem):
                doc["_id"] = codec.stem_to_id(stem)  # renamed while open: the id follows the name, as mv does
            # a file created at this name (cp, a new document) is new: no need to ask
            # whether it repeats the stored version, which costs a lookup per file
            fresh = node.scratch is not None and node.scratch.fresh and path == node.path
            if not fresh and self.absent.knows(branch.key, path[2]):  # e.g. rsync's temporary renamed onto a new name
                fresh = self.absent.absent(branch.key, path[2], stem, await self._head(branch))
            # the bytes written are kept when they are JSON of this document (a filesystem
            # returns what was written: cmp, checksums and rsync's quick check agree)
            written, head = await self._write(branch.key, branch.put, path[2], doc, stem=stem, author=author, mtime=mtime, if_changed=not fresh, raw=data)
        except InvalidDocument as exc:
            log.error("write to /%s rejected, the previous version stays: %s", "/".join(path), exc)
            raise
        if fresh:  # always one new slot
            self._wrote(branch.key, head)
        else:  # perhaps no new slot (the content was unchanged), and then ``head`` is not one
            self._note_head(branch.key, head)
        self.absent.wrote(branch.key, path[2], stem, head if fresh else None)
        self._set_written(node, written, head)
        if node.scratch is not None:  # a new document: the store holds it now
            if written.rendered == data:
                # the kernel's pages of a scratch file are the bytes written to it, which
                # are this version's: nothing to invalidate at the last close (``_settle``)
                node.info["served"] = written.version
            node.scratch = None
            if self.scratch.get(node.path) is node:
                del self.scratch[node.path]
        if node.data is None and node.scratch is None:
            self.invalidator.inode(node.ino)  # written by path (truncate, touch): the kernel cached the old version
        return written

    def _set_written(self, node: Node, written: Written, head: int) -> None:
        self._set_doc_info(node, written, head)
        # the kernel's pages and size may not be this version's, even when it is the one
        # they were filled from (an O_TRUNC open shortens the cached size): ``_settle``
        # invalidates unless the commit says otherwise
        node.info.pop("served", None)
        self.bodies.put(written.version, written.rendered)

    def _remove_scratch(self, node: Node) -> None:
        if self.scratch.get(node.path) is node:
            del self.scratch[node.path]
        parent = self.inodes.find(node.path[:-1])
        if parent is not None:
            self.invalidator.entry(parent.ino, node.path[-1])
        self.inodes.detach(node)

    def unsaved(self) -> list[Path]:
        """Files open for writing with changes not committed (reported at unmount)."""
        nodes = {id(h.node): h.node for h in self._handles.values() if isinstance(h, FileHandle) and h.writable}
        return [n.path for n in nodes.values() if n.dirty and not n.unlinked and _is_document(n.path)]
