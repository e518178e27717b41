"""Checks that a live server survived one hostile request, and a module-wide server to aim at.

After every example: no 5xx, nothing in the page that only the server should
know (tracebacks, exception names, database ids), no traceback in the server
log, and a store and database that hold either what they held before or
exactly one more complete submission, with no half-written body anywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from sqlalchemy import select

from app import errors
from app.db.models import Item, Reply, Source, Submission
from app.db.session import make_engine, make_session_factory
from app.settings import Settings
from tests.support import Instance, LiveServer, row_counts, spawn_server, stop_server, stored_files

# The default suite runs this many examples per property; BUZON_FUZZ_EXAMPLES raises it.
EXAMPLES = int(os.environ.get("BUZON_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
# Budgets high enough that the fuzz never meets the deliberate "try again later" page (a 503).
FUZZ_SETTINGS: dict[str, object] = {
    "max_submission_bytes": 1024 * 1024,
    "max_message_chars": 5000,
    "max_files_per_submission": 5,
    "max_submissions_per_hour": 10**6,
    "max_new_codenames_per_hour": 10**6,
    "max_bytes_per_hour": 10**12,
}
_EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Exit|Interrupt)\b")
_APP_EXCEPTIONS = {
    name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, BaseException)
}
_LEAKS = ("Traceback", 'File "', "site-packages", "sqlalchemy", "python_multipart", "Internal Server Error")


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, int]
    files: frozenset[str]
    reply_blobs: frozenset[str]


@dataclass(frozen=True)
class Stored:
    item_blobs: dict[str, int]
    reply_blobs: dict[str, int]
    ids: frozenset[str]


def start_module_server(instance: Instance, tmp_dir: Path) -> Iterator[LiveServer]:
    """One ``buzon serve`` for a whole test module (examples are many; starting a server is slow)."""
    server_tmp = tmp_dir / "server-tmp"
    server_tmp.mkdir()
    log_path = tmp_dir / "server.log"
    process, source_url, editor_url = spawn_server(instance.settings, server_tmp, log_path)
    try:
        yield LiveServer(instance, source_url, editor_url, server_tmp, log_path, process)
    finally:
        stop_server(process)


class Watch:
    """Holds a server to the fuzzing invariants, example after example."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.settings: Settings = server.instance.settings
        self._engine = make_engine(self.settings.resolved_database_url)
        self._log_offset = 0

    def close(self) -> None:
        self._engine.dispose()

    def snapshot(self) -> Snapshot:
        files = frozenset(p.name for p in stored_files(self.settings))
        return Snapshot(row_counts(self.settings), files, frozenset(self.stored().reply_blobs))

    def stored(self) -> Stored:
        with make_session_factory(self._engine)() as session:
            items = {name: size for name, size in session.execute(select(Item.blob_name, Item.body_size))}
            replies = {name: size for name, size in session.execute(select(Reply.blob_name, Reply.body_size))}
            ids = set(session.scalars(select(Source.id))) | set(session.scalars(select(Submission.id)))
            ids |= set(session.scalars(select(Item.id))) | set(items)
            ids |= {lookup.hex() for lookup in session.scalars(select(Source.lookup_id))}
        return Stored(items, replies, frozenset(ids))

    def check_page(self, status: int, body: bytes, *, shows_ids: bool = False) -> None:
        """A response a browser would show: no 5xx and nothing internal in it."""
        assert status < 500, body[:2000]
        text = body.decode("utf-8", errors="replace")
        for leak in _LEAKS:
            assert leak not in text, text[:2000]
        names = set(_EXCEPTION_NAME.findall(text)) | {n for n in _APP_EXCEPTIONS if n in text}
        assert not names, (names, text[:2000])
        if not shows_ids:
            leaked = [i for i in self.stored().ids if i in text]
            assert not leaked, (leaked, text[:2000])

    def check_log(self) -> None:
        with self.server.log_path.open("rb") as log:
            log.seek(self._log_offset)
            new = log.read()
        self._log_offset += len(new)
        text = new.decode("utf-8", errors="replace")
        assert "Traceback" not in text, text
        assert "Exception in ASGI application" not in text, text

    def check_store(self, before: Snapshot, *, new_source: bool | None) -> None:
        """Unchanged, or exactly one more complete submission (``new_source``: who may send it)."""
        after = self.snapshot()
        stored = self.stored()
        names = {p.name for p in stored_files(self.settings)}
        # Every file in the store is a complete body that a row points to, and every row has its body.
        assert names == set(stored.item_blobs) | set(stored.reply_blobs)
        for name, size in {**stored.item_blobs, **stored.reply_blobs}.items():
            assert (self.settings.store_dir / name[:2] / name).stat().st_size == size
        # Only an editor deleting a reply removes a body; only an editor replying adds one outside a submission.
        added, removed = after.files - before.files, before.files - after.files
        assert removed <= before.reply_blobs, removed
        new_item_files = added - after.reply_blobs
        delta = {table: after.rows[table] - before.rows[table] for table in after.rows}
        if delta == {"sources": 0, "submissions": 0, "items": 0}:
            assert not new_item_files, new_item_files
            return
        allowed = {True: {1}, False: {0}, None: {0, 1}}[new_source]
        assert delta["sources"] in allowed, delta
        assert delta["submissions"] == 1, delta
        assert delta["items"] >= 1, delta
        assert len(new_item_files) == delta["items"], (new_item_files, delta)

    def settle(self, before: Snapshot, *, new_source: bool | None, timeout: float = 10) -> None:
        """``check_store`` once the server has noticed a vanished client and cleaned up."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.check_store(before, new_source=new_source)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def raw_exchange(url: str, request: bytes, *, complete: bool = True) -> bytes:
    """Send ``request`` bytes as they are on a new connection; return whatever comes back.

    A ``complete`` request (with ``Connection: close``) is answered and the
    connection closed by the server; otherwise the client vanishes mid-request
    after a moment, as a dropped Tor circuit would.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    received = bytearray()
    with socket.create_connection((host, int(port)), timeout=30 if complete else 0.3) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # the server may answer and close before it has read everything
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return bytes(received)


def parse_status(response: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(match.group(1)) if match else None
