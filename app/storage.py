"""The ciphertext store: one file per envelope body. It never sees plaintext.

Bodies are written to ``<name>.partial`` and renamed into place only once the
whole submission has been encrypted, so a crash or a refused upload leaves no
body that looks complete; ``sweep_partials`` removes what a crash left.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import BinaryIO

PARTIAL_SUFFIX = ".partial"


class PendingBlob:
    """A body being written. Call ``commit`` to keep it or ``discard`` to drop it."""

    def __init__(self, final_path: Path) -> None:
        self.final_path = final_path
        self._partial = final_path.with_name(final_path.name + PARTIAL_SUFFIX)
        fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self._partial, self.final_path)

    def discard(self) -> None:
        self.file.close()
        self._partial.unlink(missing_ok=True)
        self.final_path.unlink(missing_ok=True)


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
        path = self._path(name)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        return name, PendingBlob(path)

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

    def sweep_partials(self, min_age_seconds: float = 3600) -> int:
        """Remove bodies an interrupted upload left half-written; return how many.

        Only partials untouched for ``min_age_seconds`` go, so an upload still
        streaming into another process sharing the store is left alone.
        """
        cutoff = time.time() - min_age_seconds
        removed = 0
        for partial in self.root.glob(f"*/*{PARTIAL_SUFFIX}"):
            if partial.stat().st_mtime <= cutoff:
                partial.unlink(missing_ok=True)
                removed += 1
        return removed
