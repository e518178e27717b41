"""The ciphertext store: one file per envelope body. It never sees plaintext.

docs/storage.md is the specification. In short: bodies go into empty files
("free slots") made ahead in batches and taken at random, so a body's birth
time, inode number and directory position date its slot's batch, not its tip;
every file time under the data directory is reset every minute
(``normalise_times``); reads never move an atime.

From taking a slot until the rows that refer to the body have committed, the
writer holds an exclusive ``flock`` on it. So after a crash (even ``kill -9``)
a half-written body is unlocked and referenced by no row, and
``sweep_abandoned`` removes exactly those without racing live writers in
other processes. A body is never empty, so an empty file is always a free slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

DEFAULT_POOL_SIZE = 1024
EMERGENCY_BATCHES = 8
BUCKETS = tuple(f"{i:02x}" for i in range(256))
_HEX = frozenset("0123456789abcdef")
_random = secrets.SystemRandom()


class EmptyBody(ValueError):
    """A body with no bytes would read as a free slot and be handed to the next writer."""


class PendingBlob:
    """A body being written into a slot locked until ``release`` or ``discard``.

    ``commit`` makes it durable; ``release`` (after the rows referring to it
    have committed) drops the lock; ``discard`` turns it back into a free slot.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.final_path = path
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        """Flush to disk; the lock stays held."""
        self.file.flush()
        if os.fstat(self.file.fileno()).st_size == 0:
            raise EmptyBody(self.final_path.name)
        os.fsync(self.file.fileno())

    def release(self) -> None:
        """The body is recorded: close it, letting the sweep see it as settled."""
        self.file.close()

    def discard(self) -> None:
        """Empty the slot again; safe after ``commit`` (its rows failed) and twice."""
        if self.file.closed:
            return
        # Flush first, or closing would write the buffer back after the truncation.
        # On a full disk the flush fails; closing may then manage it once the
        # truncation freed room, so the slot is emptied again after closing.
        with contextlib.suppress(OSError):
            self.file.flush()
        with contextlib.suppress(OSError):
            os.ftruncate(self.file.fileno(), 0)
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            if self.final_path.stat().st_size > 0:
                _empty_unless_held(self.final_path)


def _open_unread(path: Path | str, flags: int, dir_fd: int | None = None) -> int:
    """``os.open`` with O_NOATIME, so that reading leaves no access time.

    The kernel refuses O_NOATIME on a file the process does not own (another
    user without CAP_FOWNER): then open plainly and let normalisation reset it.
    """
    try:
        return os.open(path, flags | os.O_NOATIME, dir_fd=dir_fd)
    except PermissionError:
        return os.open(path, flags, dir_fd=dir_fd)


def _lock_if_unheld(path: Path, flags: int = os.O_RDONLY) -> int | None:
    """An fd holding ``path``'s lock, or None if a live writer holds it or it is gone."""
    try:
        fd = _open_unread(path, flags | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _empty_unless_held(path: Path) -> None:
    # Safe without asking the database: only a discarded body comes here, and
    # nobody takes a non-empty file as a slot.
    fd = _lock_if_unheld(path, os.O_WRONLY)
    if fd is not None:
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)


def _is_body_name(name: str) -> bool:
    return len(name) == 32 and set(name) <= _HEX


def _fsync_directory(path: Path) -> None:
    # Without this a power cut could lose a new slot or a removal.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.root = root
        self.pool_size = pool_size

    def create_dirs(self) -> None:
        """The root and all its buckets at once: no bucket's birth time then dates a body."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for bucket in BUCKETS:
            (self.root / bucket).mkdir(mode=0o700, exist_ok=True)

    def _path(self, name: str) -> Path:
        if not _is_body_name(name):
            raise ValueError("bad blob name")
        return self.root / name[:2] / name

    def begin(self) -> tuple[str, PendingBlob]:
        """Take a free slot at random, making a batch first only if none is left."""
        for _ in range(EMERGENCY_BATCHES):
            claimed = self._claim_slot()
            if claimed is not None:
                path, fd = claimed
                return path.name, PendingBlob(path, fd)
            # Concurrent writers may take a whole batch before this one gets a slot.
            self._make_slots(self.pool_size)
        raise OSError("the store found no free slot even after making batches")

    def create(self, name: str) -> PendingBlob:
        """Start writing a body under a given name: restores keep the names rows refer to."""
        path = self._path(name)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        return PendingBlob(path, fd)

    def open(self, name: str) -> BinaryIO:
        return os.fdopen(_open_unread(self._path(name), os.O_RDONLY | os.O_NOFOLLOW), "rb")

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        """Space left for bodies on the store's filesystem (what an unprivileged writer may use)."""
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    # -- slots -----------------------------------------------------------

    def _entries(self, bucket: str) -> Iterator[tuple[Path, int]]:
        """(path, size) of each body or slot in one bucket, listed without moving its atime."""
        try:
            fd = _open_unread(self.root / bucket, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            with os.scandir(fd) as entries:
                listed = [
                    (self.root / bucket / e.name, e.stat(follow_symlinks=False).st_size)
                    for e in entries
                    if _is_body_name(e.name) and e.is_file(follow_symlinks=False)
                ]
        finally:
            os.close(fd)
        yield from listed

    def _all_entries(self) -> Iterator[tuple[Path, int]]:
        for bucket in BUCKETS:
            yield from self._entries(bucket)

    def _claim_slot(self) -> tuple[Path, int] | None:
        """A free slot, locked and still empty under the lock, chosen at random."""
        for bucket in _random.sample(BUCKETS, len(BUCKETS)):
            free = [path for path, size in self._entries(bucket) if size == 0]
            _random.shuffle(free)
            for path in free:
                fd = _lock_if_unheld(path, os.O_WRONLY)
                if fd is None:
                    continue
                status = os.fstat(fd)
                # Another writer may have filled it, or a trim removed it, between listing and lock.
                if status.st_size == 0 and status.st_nlink > 0:
                    return path, fd
                os.close(fd)
        return None

    def free_slots(self) -> int:
        return sum(1 for _, size in self._all_entries() if size == 0)

    def fill_pool(self) -> int:
        """Top the free slots up to ``pool_size`` and trim them to twice that; return how many were made.

        New slots get random names and are made in random order. Only unlocked
        empty slots are removed: a locked empty one is a writer's new body.
        """
        self.create_dirs()
        free = [path for path, size in self._all_entries() if size == 0]
        for path in _random.sample(free, max(0, len(free) - 2 * self.pool_size)):
            fd = _lock_if_unheld(path)
            if fd is not None:
                if os.fstat(fd).st_size == 0:
                    path.unlink(missing_ok=True)
                os.close(fd)
        missing = max(0, self.pool_size - len(free))
        self._make_slots(missing)
        return missing

    def _make_slots(self, count: int) -> None:
        if count == 0:
            return
        self.create_dirs()
        for _ in range(count):
            name = secrets.token_hex(16)
            os.close(os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        for bucket in BUCKETS:
            _fsync_directory(self.root / bucket)

    def sweep_abandoned(self, referenced_names: Callable[[], set[str]]) -> int:
        """Remove bodies no live writer holds and no row refers to; return how many.

        ``referenced_names`` returns every blob name the database refers to.
        It is asked again once the candidates are locked: a writer that let
        go in between had committed its rows first, so its body is kept.
        """
        recorded = referenced_names()
        held: list[tuple[Path, int]] = []
        try:
            for path, size in self._all_entries():
                if size == 0 or path.name in recorded:
                    continue
                fd = _lock_if_unheld(path)
                if fd is not None:
                    held.append((path, fd))
            recorded = referenced_names() if held else recorded
            removed = 0
            for path, fd in held:
                if path.name not in recorded and os.fstat(fd).st_size > 0:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed
        finally:
            for _, fd in held:
                os.close(fd)


def normalise_times(root: Path) -> int:
    """Set atime and mtime 0 on every file and directory under ``root``, in random order.

    Setting them makes each ctime the moment of this call, so afterwards no
    file time dates a tip or orders two of them (docs/storage.md, "Times").
    Returns how many paths were set; ones that vanished or refuse are skipped.
    """
    paths = [root]
    for directory, subdirectories, files in os.walk(root):
        paths.extend(Path(directory, name) for name in subdirectories + files)
    _random.shuffle(paths)
    done = 0
    for path in paths:
        with contextlib.suppress(OSError):
            os.utime(path, ns=(0, 0), follow_symlinks=False)
            done += 1
    return done
