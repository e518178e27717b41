"""Watching for disk writes, for code that must keep uploads and decrypted files in memory."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

_recorders: list[list[str]] = []
_audit_hook_installed = False


def _record_writes(event: str, args: tuple[object, ...]) -> None:
    if not _recorders:
        return
    if event == "open" and len(args) == 3:
        path, mode, flags = args
        writes = isinstance(mode, str) and any(c in mode for c in "wax+")
        writes = writes or (isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        if writes and "__pycache__" not in str(path):
            _recorders[-1].append(f"open {path!r} {mode!r}")
    elif event in {"tempfile.mkstemp", "tempfile.mkdtemp", "os.mkdir", "os.rename", "os.link", "os.symlink"}:
        _recorders[-1].append(f"{event} {args!r}")


@contextmanager
def recorded_writes() -> Iterator[list[str]]:
    """Every file Python opens for writing meanwhile (audit hooks cannot be removed: it idles after)."""
    global _audit_hook_installed
    if not _audit_hook_installed:
        sys.addaudithook(_record_writes)
        _audit_hook_installed = True
    writes: list[str] = []
    _recorders.append(writes)
    try:
        yield writes
    finally:
        _recorders.remove(writes)


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("no temporary file may be created here")


def refuse_temporary_files(monkeypatch: pytest.MonkeyPatch, spool: Path) -> None:
    """Make ``tempfile`` refuse to create files, and point TMPDIR at ``spool``.

    C libraries (qpdf, libtiff, libheif) are not seen by audit hooks; they would spool to TMPDIR,
    so the test checks that ``spool`` stays empty.
    """
    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, _refuse)
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", None)
