"""The backup archive's layout and manifest (docs/operator-backups.md, "The archive").

A backup is a plain tar whose members are, in this order:

- ``pepper``: the codename pepper, so sources can still log in;
- ``store/<xx>/<name>``: every body a database row names, as stored;
- ``database/<table>.jsonl``: every row of every table, one JSON array a line,
  columns and codecs as in the manifest, tables parents first;
- ``manifest.json``, last, since it holds the size and SHA-256 of every other
  member, and the Alembic revision of the schema the rows belong to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

FORMAT_NAME = "buzon-backup"
BACKUP_VERSION = 1
BACKUP_MANIFEST = "manifest.json"
PEPPER_NAME = "pepper"
STORE_PREFIX = "store/"
DATABASE_PREFIX = "database/"
# The column that names a body in the ciphertext store (items, replies).
BLOB_COLUMN = "blob_name"
ALEMBIC_TABLE = "alembic_version"
# How a column's values are written in JSON: bytes as base64, dates in ISO 8601.
CODECS = frozenset({"str", "int", "bool", "bytes", "date", "datetime"})

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BLOB_NAME = re.compile(r"^[0-9a-f]{32}$")
_SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_REVISION = re.compile(r"^[0-9A-Za-z_]{1,32}$")


class ArchiveError(Exception):
    """The archive cannot be used; the message says why."""


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


@dataclass(frozen=True)
class TableDump:
    name: str
    columns: list[tuple[str, str]]  # (column, codec)
    rows: int
    digest: FileDigest


@dataclass(frozen=True)
class BackupManifest:
    revision: str
    buzon_version: str
    created_on: str
    database: str
    pepper: FileDigest
    tables: list[TableDump]
    blobs: dict[str, FileDigest]
    # Bodies deleted while the backup ran; their rows were left out too.
    skipped_blobs: int = 0

    @property
    def blob_bytes(self) -> int:
        return sum(d.size for d in self.blobs.values())


def table_member(name: str) -> str:
    return f"{DATABASE_PREFIX}{name}.jsonl"


def blob_member(name: str) -> str:
    return f"{STORE_PREFIX}{name[:2]}/{name}"


def backup_manifest_json(manifest: BackupManifest) -> bytes:
    document = {
        "format": FORMAT_NAME,
        "version": BACKUP_VERSION,
        "buzon_version": manifest.buzon_version,
        "revision": manifest.revision,
        "created_on": manifest.created_on,
        "database": manifest.database,
        "pepper": _digest_json(manifest.pepper),
        "tables": [
            {"name": t.name, "columns": [list(c) for c in t.columns], "rows": t.rows, **_digest_json(t.digest)}
            for t in manifest.tables
        ],
        "blobs": {name: _digest_json(d) for name, d in manifest.blobs.items()},
        "skipped_blobs": manifest.skipped_blobs,
    }
    return json.dumps(document, indent=1).encode() + b"\n"


def _digest_json(digest: FileDigest) -> dict[str, object]:
    return {"size": digest.size, "sha256": digest.sha256}


_FIELDS = {
    "format",
    "version",
    "buzon_version",
    "revision",
    "created_on",
    "database",
    "pepper",
    "tables",
    "blobs",
    "skipped_blobs",
}


def parse_backup_manifest(raw: bytes) -> BackupManifest:
    """The manifest, checked field by field; ArchiveError for anything else."""
    try:
        document = json.loads(raw)
    except ValueError as e:
        raise ArchiveError("The manifest is not JSON: the archive is damaged.") from e
    fields = _object(document, "the manifest")
    if fields.get("format") != FORMAT_NAME:
        raise ArchiveError("This is not a Buzón backup.")
    if fields.get("version") != BACKUP_VERSION:
        raise ArchiveError(
            f"This backup has format version {fields.get('version')!r}; this Buzón reads {BACKUP_VERSION}."
        )
    if set(fields) != _FIELDS:
        raise ArchiveError("The manifest has missing or unknown fields.")
    return BackupManifest(
        revision=_text(fields["revision"], "revision", _REVISION),
        buzon_version=_text(fields["buzon_version"], "buzon_version"),
        created_on=_text(fields["created_on"], "created_on"),
        database=_text(fields["database"], "database"),
        pepper=_digest(fields["pepper"], "pepper"),
        tables=_tables(fields["tables"]),
        blobs={
            _text(name, "a body name", _BLOB_NAME): _digest(value, f"body {name}")
            for name, value in _object(fields["blobs"], "blobs").items()
        },
        skipped_blobs=_count(fields["skipped_blobs"], "skipped_blobs"),
    )


def _tables(value: object) -> list[TableDump]:
    if not isinstance(value, list):
        raise ArchiveError("The manifest's tables are not a list.")
    tables = []
    for entry in value:
        fields = _object(entry, "a table")
        if set(fields) != {"name", "columns", "rows", "size", "sha256"}:
            raise ArchiveError("A table in the manifest has missing or unknown fields.")
        name = _text(fields["name"], "a table name", _SQL_NAME)
        tables.append(
            TableDump(name, _columns(fields["columns"], name), _count(fields["rows"], name), _digest(fields, name))
        )
    if len({t.name for t in tables}) != len(tables):
        raise ArchiveError("The manifest lists a table twice.")
    return tables


def _columns(value: object, table: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise ArchiveError(f"The columns of {table} are damaged in the manifest.")
    columns = []
    for column in value:
        if not (isinstance(column, list) and len(column) == 2 and column[1] in CODECS):
            raise ArchiveError(f"The columns of {table} are damaged in the manifest.")
        columns.append((_text(column[0], f"a column of {table}", _SQL_NAME), str(column[1])))
    return columns


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ArchiveError(f"In the manifest, {what} is not an object.")
    return value


def _text(value: object, what: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or len(value) > 200 or (pattern is not None and not pattern.match(value)):
        raise ArchiveError(f"In the manifest, {what} is malformed.")
    return value


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ArchiveError(f"In the manifest, the count of {what} is malformed.")
    return value


def _digest(value: object, what: str) -> FileDigest:
    fields = _object(value, what)
    return FileDigest(_count(fields.get("size"), what), _text(fields.get("sha256"), f"the SHA-256 of {what}", _SHA256))
