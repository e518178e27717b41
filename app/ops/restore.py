"""``buzon restore``: rebuild an instance from a ``buzon backup`` archive.

Everything the archive says is checked before it is used: the manifest's
shape, the member list and sizes, the schema revision, and the SHA-256 of
every member. The target must be empty; if anything fails, everything the
restore created is removed again, so no half-restored instance is left.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, func, inspect, make_url, select

from app.crypto import PEPPER_SIZE
from app.db.migrate import MIGRATIONS_DIR, upgrade_database
from app.db.session import make_engine
from app.formats import backup_archive as layout
from app.formats.backup_archive import ArchiveError, BackupManifest, FileDigest, TableDump, parse_backup_manifest
from app.ops.archives import ByteProgress, Meter, open_plain_tar
from app.settings import Settings
from app.storage import BlobStore

_T = TypeVar("_T")


class TargetNotEmpty(Exception):
    """The data dir or the database already holds something; nothing was changed."""


MAX_MANIFEST_BYTES = 256 * 1024 * 1024
# A row is at most a few sealed records; a longer line is damage, not data.
MAX_LINE_BYTES = 16 * 1024 * 1024
_BATCH_ROWS = 500
_COPY_SIZE = 1024 * 1024


def restore_backup(*, archive: Path, settings: Settings, progress: ByteProgress | None = None) -> BackupManifest:
    """Restore ``archive`` into the empty data dir and database of ``settings``."""
    unreadable = ArchiveError(f"Cannot read {archive} as a tar archive.")
    with open_plain_tar(archive, forward_only=False, error=unreadable) as tar:
        members = _members(tar)
        manifest = parse_backup_manifest(_read_manifest(tar, members))
        _check_members(members, manifest)
        check_revision(manifest.revision)
        total = sum(m.size for name, m in members.items() if name != layout.BACKUP_MANIFEST)
        meter = Meter(progress, total)
        target = _Target(settings)
        try:
            target.check_empty()
            try:
                target.create_dirs()
                _restore_blobs(tar, members, manifest, BlobStore(settings.store_dir), meter)
                _restore_pepper(tar, members[layout.PEPPER_NAME], manifest.pepper, settings.pepper_path, meter)
                _restore_database(tar, members, manifest, target.engine(), meter)
            except BaseException:
                target.remove()
                raise
        finally:
            target.dispose()
    return manifest


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    try:
        for member in tar.getmembers():
            if not member.isfile() or member.name in members:
                raise ArchiveError(f"Unexpected member {member.name!r} in the archive.")
            members[member.name] = member
    except tarfile.TarError as e:
        raise ArchiveError("The archive is damaged (unreadable tar header).") from e
    return members


def _read_manifest(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> bytes:
    member = members.get(layout.BACKUP_MANIFEST)
    if member is None:
        raise ArchiveError("This is not a Buzón backup (no manifest.json).")
    if member.size > MAX_MANIFEST_BYTES:
        raise ArchiveError("The manifest is too large.")
    return _open_member(tar, member).read()


def _check_members(members: dict[str, tarfile.TarInfo], manifest: BackupManifest) -> None:
    expected = {layout.PEPPER_NAME: manifest.pepper.size}
    expected |= {layout.table_member(t.name): t.digest.size for t in manifest.tables}
    expected |= {layout.blob_member(name): d.size for name, d in manifest.blobs.items()}
    present = {name: m.size for name, m in members.items() if name != layout.BACKUP_MANIFEST}
    if set(present) != set(expected):
        missing, extra = len(set(expected) - set(present)), len(set(present) - set(expected))
        raise ArchiveError(f"The archive does not match its manifest ({missing} member(s) missing, {extra} extra).")
    for name, size in present.items():
        if size != expected[name]:
            raise ArchiveError(f"{name} has {size} bytes, but the manifest says {expected[name]}.")


def _open_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    stream = tar.extractfile(member)
    assert stream is not None  # regular files only, see _members
    return stream


def _chunks(stream: IO[bytes], meter: Meter) -> Iterator[bytes]:
    while chunk := stream.read(_COPY_SIZE):
        meter.advance(len(chunk))
        yield chunk


def _restore_blobs(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], manifest: BackupManifest, store: BlobStore, meter: Meter
) -> None:
    # In archive order, so the tar is read front to back.
    for name in sorted(manifest.blobs, key=lambda n: members[layout.blob_member(n)].offset):
        pending = store.create(name)
        try:
            hasher = hashlib.sha256()
            for chunk in _chunks(_open_member(tar, members[layout.blob_member(name)]), meter):
                hasher.update(chunk)
                pending.file.write(chunk)
            _check_digest(hasher.hexdigest(), manifest.blobs[name], f"The body {name}")
            pending.commit()
            pending.release()
        except BaseException:
            pending.discard()
            raise


def _check_digest(sha256: str, expected: FileDigest, what: str) -> None:
    if sha256 != expected.sha256:
        raise ArchiveError(f"{what} does not match its SHA-256 in the manifest: the archive is damaged.")


def _restore_pepper(
    tar: tarfile.TarFile, member: tarfile.TarInfo, digest: FileDigest, path: Path, meter: Meter
) -> None:
    pepper = _open_member(tar, member).read()
    meter.advance(len(pepper))
    _check_digest(hashlib.sha256(pepper).hexdigest(), digest, "The pepper")
    if len(pepper) != PEPPER_SIZE:
        raise ArchiveError("The pepper in the archive has the wrong size.")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pepper)
        f.flush()
        os.fsync(f.fileno())


def _restore_database(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], manifest: BackupManifest, engine: Engine, meter: Meter
) -> None:
    # The schema as it was when the backup was made, then the rows, then any
    # later migrations: they see the data exactly as on the old server.
    upgrade_database(engine, manifest.revision)
    with engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(bind=connection)
        tables = {name: t for name, t in metadata.tables.items() if name != layout.ALEMBIC_TABLE}
        if set(tables) != {t.name for t in manifest.tables}:
            raise ArchiveError(f"The archive's tables do not match the schema of revision {manifest.revision}.")
        blob_names: set[str] = set()
        for dump in manifest.tables:
            stream = _open_member(tar, members[layout.table_member(dump.name)])
            blob_names |= _insert_rows(connection, tables[dump.name], dump, stream, meter)
        if not blob_names <= set(manifest.blobs):
            raise ArchiveError("Some rows name a body that is not in the archive.")
        if engine.dialect.name == "postgresql":
            _advance_sequences(connection, list(tables.values()))
    upgrade_database(engine, "head")


def _insert_rows(connection: Connection, table: Table, dump: TableDump, stream: IO[bytes], meter: Meter) -> set[str]:
    names = [name for name, _ in dump.columns]
    if set(names) != set(table.columns.keys()):
        raise ArchiveError(f"The columns of {dump.name} do not match the schema of its revision.")
    blob_index = names.index(layout.BLOB_COLUMN) if layout.BLOB_COLUMN in names else None
    hasher, rows, batch, blob_names = hashlib.sha256(), 0, [], set()
    for line in _lines(stream, dump.name):
        meter.advance(len(line))
        hasher.update(line)
        values = _decode_row(dump, line)
        if blob_index is not None:
            blob_names.add(str(values[blob_index]))
        batch.append(dict(zip(names, values, strict=True)))
        rows += 1
        if len(batch) == _BATCH_ROWS:
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)
    _check_digest(hasher.hexdigest(), dump.digest, f"The dump of {dump.name}")
    if rows != dump.rows:
        raise ArchiveError(f"{dump.name} has {rows} rows, but the manifest says {dump.rows}.")
    return blob_names


def _lines(stream: IO[bytes], table: str) -> Iterator[bytes]:
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
            raise ArchiveError(f"The dump of {table} is damaged (a row is too long or cut short).")
        yield line


def _decode_row(dump: TableDump, line: bytes) -> list[object]:
    try:
        values = json.loads(line)
        if not isinstance(values, list) or len(values) != len(dump.columns):
            raise ValueError("wrong number of columns")
        return [_decode_value(codec, value) for (_, codec), value in zip(dump.columns, values, strict=True)]
    except (ValueError, TypeError, binascii.Error) as e:
        raise ArchiveError(f"The dump of {dump.name} has a damaged row.") from e


def _decode_value(codec: str, value: object) -> object:
    if value is None:
        return None
    decoders: dict[str, Callable[[object], object]] = {
        "bytes": lambda v: base64.b64decode(_typed(v, str), validate=True),
        "date": lambda v: dt.date.fromisoformat(_typed(v, str)),
        "datetime": lambda v: dt.datetime.fromisoformat(_typed(v, str)),
        "bool": lambda v: _typed(v, bool),
        "int": lambda v: _typed(v, int) if not isinstance(v, bool) else _typed(v, str),
        "str": lambda v: _typed(v, str),
    }
    return decoders[codec](value)


def _typed(value: object, kind: type[_T]) -> _T:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}")
    return value


def _advance_sequences(connection: Connection, tables: list[Table]) -> None:
    """Rows came with their ids: move each serial column's sequence past them."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = connection.scalar(select(func.pg_get_serial_sequence(table.name, column.name)))
            if sequence is not None:
                highest = func.max(table.c[column.name])
                connection.execute(select(func.setval(sequence, func.coalesce(highest, 1), highest.is_not(None))))


def check_revision(revision: str) -> None:
    """Refuse a schema revision this code does not know: it comes from a newer Buzón."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if revision not in known:
        raise ArchiveError(
            f"This backup's database schema (revision {revision}) is newer than this Buzón knows; "
            "restore it with the Buzón version that made it, or a later one."
        )


class _Target:
    """The data dir and database being restored into, and how to undo that."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.resolved_database_url
        self._engine: Engine | None = None
        self._made_data_dir = False
        url = make_url(self._url)
        self._sqlite_file = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
        self._sqlite_file_existed = self._sqlite_file is not None and self._sqlite_file.exists()

    def check_empty(self) -> None:
        data_dir = self._settings.data_dir
        if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
            raise TargetNotEmpty(f"{data_dir} is not empty; restore only into a new or empty data directory.")
        if self._sqlite_file is not None and not self._sqlite_file_existed:
            return  # nothing to look at, and connecting would create the file
        if inspect(self.engine()).get_table_names():
            raise TargetNotEmpty("The database already has tables; restore only into an empty database.")

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self._url)
        return self._engine

    def create_dirs(self) -> None:
        data_dir = self._settings.data_dir
        self._made_data_dir = not data_dir.exists()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        BlobStore(self._settings.store_dir).create_dirs()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def remove(self) -> None:
        """Undo the restore: the target goes back to how check_empty found it."""
        self.dispose()
        data_dir = self._settings.data_dir
        in_data_dir = self._sqlite_file is not None and self._sqlite_file.resolve().is_relative_to(data_dir.resolve())
        if self._sqlite_file is not None and not self._sqlite_file_existed:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self._sqlite_file}{suffix}").unlink(missing_ok=True)
        elif not in_data_dir:
            self._drop_tables()
        if self._made_data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif data_dir.is_dir():
            for child in data_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def _drop_tables(self) -> None:
        engine = self.engine()
        metadata = MetaData()
        metadata.reflect(bind=engine)
        metadata.drop_all(bind=engine)
        engine.dispose()
