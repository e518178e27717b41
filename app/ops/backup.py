"""``buzon backup``: a ciphertext-only archive of an instance (docs/operator-backups.md).

The layout is in app/formats/backup_archive.py. Nothing in the archive is unwrapped:
keys appear only as the sealed or wrapped records the database holds, and
``csrf.key`` is left out (the server makes a new one).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, Column, Connection, Date, DateTime, Engine, Integer, LargeBinary, MetaData, String
from sqlalchemy import Table as SqlTable

from app.clock import utc_today
from app.formats.backup_archive import (
    ALEMBIC_TABLE,
    BACKUP_MANIFEST,
    BLOB_COLUMN,
    PEPPER_NAME,
    BackupManifest,
    FileDigest,
    TableDump,
    backup_manifest_json,
    blob_member,
    table_member,
)
from app.ops.archives import ByteProgress, Meter
from app.storage import BlobStore
from app.version import buzon_version

_COPY_SIZE = 1024 * 1024

# (bytes written so far, bytes expected in all)


class BackupError(Exception):
    """The backup could not be made; the message says why, and names no secret."""


@dataclass
class BackupReport:
    manifest: BackupManifest
    archive_bytes: int
    rows: dict[str, int] = field(default_factory=dict)


def write_backup(
    *, engine: Engine, store_root: Path, pepper_path: Path, out: Path, progress: ByteProgress | None = None
) -> BackupReport:
    """Write an archive of the instance to ``out``, which must not exist yet.

    The rows come from one read snapshot, so they agree with each other; only
    bodies those rows name are copied, so a tip arriving meanwhile is left out
    whole. The archive is written to ``out.partial`` and renamed at the end.
    """
    if out.exists():
        raise BackupError(f"{out} already exists; choose a new name.")
    pepper = _read_pepper(pepper_path)
    partial = out.with_name(out.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise BackupError(f"Cannot create {partial}: {e.strerror or e}.") from e
    try:
        with os.fdopen(fd, "wb") as sink:
            manifest = _write_archive(engine, BlobStore(store_root), pepper, sink, out.parent, progress)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupReport(manifest, out.stat().st_size, {t.name: t.rows for t in manifest.tables})


def _read_pepper(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise BackupError(f"Cannot read the pepper at {path}: is this an initialised instance?") from e


def _write_archive(
    engine: Engine, store: BlobStore, pepper: bytes, sink: BinaryIO, work_dir: Path, progress: ByteProgress | None
) -> BackupManifest:
    with _Dumps(work_dir) as dumps:
        with snapshot(engine) as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            if revision is None:
                raise BackupError("The database has no schema: is this an initialised instance?")
            for table in dump_order(connection):
                dumps.dump(connection, table)
        # The snapshot is over: bodies are copied without holding up writers.
        meter = Meter(progress, len(pepper) + dumps.size + _stored_bytes(store, dumps.blob_names))
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
            pepper_digest = _add(tar, PEPPER_NAME, io.BytesIO(pepper), len(pepper), meter)
            blobs, vanished = _add_blobs(tar, store, sorted(dumps.blob_names), meter)
            final = dumps.without(vanished)
            # Exact now: vanished bodies and their rows are out.
            meter.total = meter.done + sum(d.table.digest.size for d in final)
            tables = []
            for dump in final:
                digest = _add(tar, table_member(dump.table.name), dump.file, dump.table.digest.size, meter)
                tables.append(TableDump(dump.table.name, dump.table.columns, dump.table.rows, digest))
            manifest = BackupManifest(
                revision=revision,
                buzon_version=buzon_version(),
                created_on=utc_today().isoformat(),
                database=engine.dialect.name,
                pepper=pepper_digest,
                tables=tables,
                blobs=blobs,
                skipped_blobs=len(vanished),
            )
            raw = backup_manifest_json(manifest)
            _add(tar, BACKUP_MANIFEST, io.BytesIO(raw), len(raw), None)
    return manifest


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see the database as of one moment."""
    if engine.dialect.name == "sqlite":
        # pysqlite opens no transaction before a SELECT; an explicit BEGIN
        # makes every read after the first one see the same WAL snapshot.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("BEGIN")
            try:
                yield connection
            finally:
                connection.exec_driver_sql("ROLLBACK")
    else:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with engine.connect().execution_options(**options) as connection, connection.begin():
            yield connection


def dump_order(connection: Connection) -> list[SqlTable]:
    """The database's own tables, parents before children."""
    metadata = MetaData()
    metadata.reflect(bind=connection)
    return [t for t in metadata.sorted_tables if t.name != ALEMBIC_TABLE]


def codec_of(column: Column[object]) -> str:
    kind = column.type
    # Order matters: Boolean before Integer, DateTime before Date.
    for codec, types in (
        ("bytes", LargeBinary),
        ("bool", Boolean),
        ("datetime", DateTime),
        ("date", Date),
        ("int", Integer),
        ("str", String),
    ):
        if isinstance(kind, types):
            return codec
    raise BackupError(f"Column {column.table.name}.{column.name} has a type backups do not handle: {kind}.")


def encode_value(codec: str, value: object) -> object:
    if value is None:
        return None
    if codec == "bytes":
        assert isinstance(value, bytes | memoryview)
        return base64.b64encode(bytes(value)).decode("ascii")
    if codec in ("date", "datetime"):
        assert isinstance(value, dt.date)
        return value.isoformat()
    return value


@dataclass(frozen=True)
class _Dump:
    table: TableDump
    file: IO[bytes]
    blob_index: int | None


class _Dumps:
    """Tables dumped to unnamed temporary files, so the snapshot ends before any body is copied."""

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir
        self._files = ExitStack()
        self.dumps: list[_Dump] = []
        self.blob_names: set[str] = set()

    def __enter__(self) -> _Dumps:
        return self

    def __exit__(self, *_: object) -> None:
        self._files.close()

    @property
    def size(self) -> int:
        return sum(d.table.digest.size for d in self.dumps)

    def dump(self, connection: Connection, table: SqlTable) -> None:
        columns = [(c.name, codec_of(c)) for c in table.columns]
        names = [name for name, _ in columns]
        blob_index = names.index(BLOB_COLUMN) if BLOB_COLUMN in names else None
        query = table.select().order_by(*table.primary_key.columns).execution_options(yield_per=1000)

        def lines() -> Iterator[bytes]:
            for row in connection.execute(query):
                if blob_index is not None:
                    self.blob_names.add(str(row[blob_index]))
                yield _json_line([encode_value(codec, value) for (_, codec), value in zip(columns, row, strict=True)])

        self.dumps.append(self._write(table.name, columns, blob_index, lines()))

    def without(self, vanished: set[str]) -> list[_Dump]:
        """Every dump rewound, minus the rows whose body was deleted after the snapshot."""
        result = []
        for dump in self.dumps:
            index = dump.blob_index
            if vanished and index is not None:
                kept = (line for line in self._lines(dump) if json.loads(line)[index] not in vanished)
                dump = self._write(dump.table.name, dump.table.columns, index, kept)
            dump.file.seek(0)
            result.append(dump)
        return result

    def _write(
        self, name: str, columns: list[tuple[str, str]], blob_index: int | None, lines: Iterator[bytes]
    ) -> _Dump:
        # Next to the archive, not in /tmp, and unnamed: a crash leaves nothing behind.
        f = self._files.enter_context(tempfile.TemporaryFile(dir=self._work_dir))  # noqa: SIM115 (closed by __exit__)
        hasher, size, rows = hashlib.sha256(), 0, 0
        for line in lines:
            f.write(line)
            hasher.update(line)
            size, rows = size + len(line), rows + 1
        return _Dump(TableDump(name, columns, rows, FileDigest(size, hasher.hexdigest())), f, blob_index)

    @staticmethod
    def _lines(dump: _Dump) -> Iterator[bytes]:
        dump.file.seek(0)
        yield from dump.file


def _json_line(values: list[object]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _stored_bytes(store: BlobStore, names: set[str]) -> int:
    total = 0
    for name in names:
        with suppress(FileNotFoundError):
            total += store.size(name)
    return total


class _HashingReader:
    """Feeds tarfile while hashing and counting what passes through."""

    def __init__(self, raw: IO[bytes], meter: Meter | None) -> None:
        self._raw = raw
        self._meter = meter
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hasher.update(data)
        self.size += len(data)
        if self._meter is not None:
            self._meter.advance(len(data))
        return data


def _add(tar: tarfile.TarFile, name: str, raw: IO[bytes], size: int, meter: Meter | None) -> FileDigest:
    info = tarfile.TarInfo(name)
    # No owner and no times: a body's mtime would date its tip to the second.
    info.size, info.mode, info.mtime = size, 0o600, 0
    reader = _HashingReader(raw, meter)
    tar.addfile(info, reader)
    return FileDigest(reader.size, reader.hasher.hexdigest())


def _add_blobs(
    tar: tarfile.TarFile, store: BlobStore, names: list[str], meter: Meter
) -> tuple[dict[str, FileDigest], set[str]]:
    digests: dict[str, FileDigest] = {}
    vanished: set[str] = set()
    for name in names:
        try:
            body = store.open(name)
        except FileNotFoundError:
            # Deleted after the snapshot (rows go first, then bodies): its row is dropped too.
            vanished.add(name)
            continue
        with body:
            # An open file keeps its bytes even if it is deleted while we read it.
            digests[name] = _add(tar, blob_member(name), body, os.fstat(body.fileno()).st_size, meter)
    return digests, vanished
