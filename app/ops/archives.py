"""What the operator tools share when they read or write a tar: one progress meter, one way to open.

Backups (app/ops/backup.py, restore.py) and export bundles (app/ops/offline.py)
are both plain tars: never compressed, so reading one can never inflate a bomb.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# (bytes done, bytes in all), called as the work goes on.
ByteProgress = Callable[[int, int], None]


class Meter:
    """Counts bytes toward a known total and reports each step to an optional callback."""

    def __init__(self, progress: ByteProgress | None, total: int) -> None:
        self._progress = progress
        self.total = total
        self.done = 0

    def advance(self, amount: int) -> None:
        self.done += amount
        if self._progress is not None:
            # A total counted ahead can fall short if a file grew since: never report past 100 %.
            self._progress(self.done, max(self.total, self.done))


def open_plain_tar(source: Path | BinaryIO, *, forward_only: bool, error: Exception) -> tarfile.TarFile:
    """``source`` as an uncompressed tar, or ``error`` raised from whatever was wrong.

    ``forward_only`` reads members in order without seeking ("r|"), as a bundle
    on a pipe or a slow disk needs; otherwise members can be read in any order.
    """
    name, fileobj = (source, None) if isinstance(source, Path) else (None, source)
    try:
        if forward_only:
            return tarfile.open(name, mode="r|", fileobj=fileobj)
        return tarfile.open(name, mode="r:", fileobj=fileobj)
    except (OSError, tarfile.TarError) as e:
        raise error from e
