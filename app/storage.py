"""The ciphertext store: one file per envelope body. It never sees plaintext.

A body is written into an unnamed file (``O_TMPFILE``) and linked into place
only once the whole submission has been encrypted, just before its rows
commit. From creation until the rows have committed, the writer holds an
exclusive ``flock`` on the file. So after a crash (even ``kill -9``) there
is never a half-written body under a name, and a body that was linked but
never recorded is unlocked and referenced by no row: ``sweep_abandoned``
removes exactly those, without racing live writers in other processes.

Filesystems without ``O_TMPFILE`` get a named ``<name>.partial`` instead,
renamed into place; the sweep removes a partial once it is unlocked and an
hour old (the hour covers the instant between its creation and its lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

PARTIAL_SUFFIX = ".partial"
PARTIAL_MIN_AGE_SECONDS = 3600
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)


class PendingBlob:
    """A body being written, locked until ``release`` or ``discard``.

    ``commit`` makes it durable under its final name; ``release`` (after the
    rows referring to it have committed) drops the lock; ``discard`` removes it.
    """

    def __init__(self, final_path: Path) -> None:
        self.final_path = final_path
        self._partial: Path | None = None
        self._linked = False
        try:
            fd = os.open(final_path.parent, os.O_TMPFILE | os.O_WRONLY, 0o600)
        except OSError as e:
            if e.errno not in _NO_TMPFILE:
                raise
            self._partial = final_path.with_name(final_path.name + PARTIAL_SUFFIX)
            fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        """Flush to disk and give the body its name; the lock stays held."""
        self.file.flush()
        os.fsync(self.file.fileno())
        if self._partial is None:
            _link_unnamed(self.file.fileno(), self.final_path)
        else:
            os.replace(self._partial, self.final_path)
        self._linked = True
        _fsync_directory(self.final_path.parent)

    def release(self) -> None:
        """The body is recorded: close it, letting the sweep see it as settled."""
        self.file.close()

    def discard(self) -> None:
        """Remove the body; safe to call after ``commit`` (its rows failed) and twice."""
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)
        if self._linked:
            self.final_path.unlink(missing_ok=True)
        # Closing flushes what is still buffered, which fails on a full disk;
        # the fd is closed all the same, and the bytes were unwanted anyway.
        with contextlib.suppress(OSError):
            self.file.close()


def _link_unnamed(fd: int, path: Path) -> None:
    # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names an O_TMPFILE file;
    # os.link only passes that flag when given a directory fd.
    proc_fds = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(str(fd), path, src_dir_fd=proc_fds, follow_symlinks=True)
    finally:
        os.close(proc_fds)


def _fsync_directory(path: Path) -> None:
    # Without this a power cut could lose the new name after its rows committed.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _modified_after(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime > cutoff
    except FileNotFoundError:
        return True  # gone already: nothing to sweep


def _lock_if_unheld(path: Path) -> int | None:
    """An fd holding ``path``'s lock, or None if a live writer holds it or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def create_dirs(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        if len(name) != 32 or not all(c in "0123456789abcdef" for c in name):
            raise ValueError("bad blob name")
        return self.root / name[:2] / name

    def begin(self) -> tuple[str, PendingBlob]:
        name = secrets.token_hex(16)
        return name, self.create(name)

    def create(self, name: str) -> PendingBlob:
        """Start writing a body under a given name: restores keep the names rows refer to."""
        path = self._path(name)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        return PendingBlob(path)

    def open(self, name: str) -> BinaryIO:
        return self._path(name).open("rb")

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        """Space left for bodies on the store's filesystem (what an unprivileged writer may use)."""
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for directory in self.root.iterdir():
            if len(directory.name) == 2 and directory.is_dir():
                yield from (p for p in directory.iterdir() if p.is_file())

    def sweep_abandoned(self, referenced_names: Callable[[], set[str]]) -> int:
        """Remove bodies no live writer holds and no row refers to; return how many.

        ``referenced_names`` returns every blob name the database refers to.
        It is asked again once the candidates are locked: a writer that let
        go in between had committed its rows first, so its body is kept.
        """
        recorded = referenced_names()
        cutoff = time.time() - PARTIAL_MIN_AGE_SECONDS
        held: list[tuple[Path, int]] = []
        try:
            for path in self._files():
                partial = path.name.endswith(PARTIAL_SUFFIX)
                if partial and _modified_after(path, cutoff):
                    continue
                if not partial and path.name in recorded:
                    continue
                fd = _lock_if_unheld(path)
                if fd is not None:
                    held.append((path, fd))
            recorded = referenced_names() if held else recorded
            removed = 0
            for path, _ in held:
                if path.name.endswith(PARTIAL_SUFFIX) or path.name not in recorded:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed
        finally:
            for _, fd in held:
                os.close(fd)
