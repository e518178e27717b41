"""Export bundles and editor key files, and opening them offline (docs/export.md).

A bundle carries a source's envelopes exactly as stored, so exporting never
decrypts anything. Opening it needs no database and no data directory: the
manifest holds every capsule, metadata record and grant the reader needs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import tarfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import Editor, NewsroomKey, Reply, Source, Submission
from app.services import audit
from app.storage import BlobStore

BUNDLE_FORMAT = "buzon-bundle"
KEY_FILE_FORMAT = "buzon-editor-key"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.txt"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_KEY_FILE_BYTES = 4096
MAX_OUTPUT_NAME_BYTES = 200
_COPY_SIZE = 64 * 1024
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}

Progress = Callable[[str, int, int], None]
"""Called as ``progress(file name, bytes written, total bytes)`` while a body is decrypted."""


class BundleError(Exception):
    """A bundle or key file is malformed, tampered with, or cannot be written out."""


class WrongKey(BundleError):
    """The key file, passphrase or recovery secret does not open this bundle."""


class ExportNotFound(Exception):
    """No such source or editor."""


class KeyNotGranted(Exception):
    """The editor holds no grant for a newsroom key that the source's envelopes need."""


@dataclass(frozen=True)
class ManifestKey:
    key_id: bytes
    public_key: bytes
    recovery_grant: bytes
    editor_grant: bytes


@dataclass(frozen=True)
class ManifestEntry:
    kind: str
    submission: int | None
    position: int
    body_size: int
    member: str
    capsule: bytes
    sealed_metadata: bytes


@dataclass(frozen=True)
class Manifest:
    designation: str
    editor_public_key: bytes
    keys: tuple[ManifestKey, ...]
    entries: tuple[ManifestEntry, ...]


@dataclass(frozen=True)
class _Body:
    member: str
    blob_name: str
    size: int


@dataclass(frozen=True)
class BundlePlan:
    """Everything an export needs from the database, read before the first byte is sent."""

    designation: str
    manifest: bytes
    bodies: tuple[_Body, ...]

    @property
    def filename(self) -> str:
        return f"buzon-{re.sub(r'[^a-z0-9]+', '-', self.designation.lower()).strip('-') or 'source'}.tar"

    @property
    def size(self) -> int:
        return self.members_size + len(_tar_trailer(self.members_size))

    @property
    def members_size(self) -> int:
        members = [(MANIFEST_NAME, len(self.manifest))] + [(b.member, b.size) for b in self.bodies]
        return sum(len(_tar_header(name, size)) + size + _pad_size(size) for name, size in members)


@dataclass(frozen=True, repr=False)
class EditorKeyFile:
    username: str
    public_key: bytes
    wrapped_secret_key: bytes

    def __repr__(self) -> str:
        return f"EditorKeyFile({self.username!r})"


@dataclass(frozen=True)
class ReportEntry:
    file: str
    kind: str
    name: str
    type: str
    size: int
    sha256: str
    received: str
    sanitised: str
    sha256_matches: bool


@dataclass(frozen=True)
class DecryptReport:
    designation: str
    out_dir: Path
    entries: tuple[ReportEntry, ...]


# --- export ------------------------------------------------------------------------


def member_name(index: int) -> str:
    return f"bodies/{index}"


def plan_bundle(*, session: Session, store: BlobStore, source_id: str, editor_id: str) -> BundlePlan:
    """Gather a source's envelopes, and the editor's grants that open them, into a manifest.

    Reads everything from the database up front, so the body can stream after
    the session has closed, and records the export in the audit log.
    """
    source = session.get(Source, source_id)
    editor = session.get(Editor, editor_id)
    if source is None or editor is None:
        raise ExportNotFound()
    rows = _stored_envelopes(session, source)
    try:
        needed = {crypto.capsule_key_id(row.capsule).hex() for row in rows}
    except crypto.DecryptionError as e:
        raise BundleError("A stored capsule is malformed.") from e
    grants = {grant.key_id: grant.sealed_secret_key for grant in editor.grants}
    if not needed <= grants.keys():
        raise KeyNotGranted()
    newsroom = session.scalars(select(NewsroomKey).where(NewsroomKey.key_id.in_(needed)).order_by(NewsroomKey.key_id))
    keys = tuple(
        ManifestKey(bytes.fromhex(k.key_id), k.public_key, k.recovery_grant, grants[k.key_id]) for k in newsroom
    )
    entries, bodies = [], []
    for index, row in enumerate(rows):
        if store.size(row.blob_name) != row.body_size:
            raise BundleError("A stored body does not have its recorded size.")
        member = member_name(index)
        entries.append(
            ManifestEntry(row.kind, row.submission, row.position, row.body_size, member, row.capsule, row.sealed)
        )
        bodies.append(_Body(member, row.blob_name, row.body_size))
    plan = BundlePlan(
        source.designation,
        manifest_json(Manifest(source.designation, editor.public_key, keys, tuple(entries))),
        tuple(bodies),
    )
    # Recorded when the export starts: a download cut short has still handed out ciphertext.
    audit.record(session, actor=editor.username, action="source export", target=source.designation)
    session.commit()
    return plan


class _Stored(NamedTuple):
    kind: str
    submission: int | None
    position: int
    capsule: bytes
    sealed: bytes
    blob_name: str
    body_size: int


def _stored_envelopes(session: Session, source: Source) -> list[_Stored]:
    rows: list[_Stored] = []
    submissions = session.scalars(
        select(Submission).where(Submission.source_id == source.id).order_by(Submission.created_on, Submission.id)
    )
    for number, submission in enumerate(submissions):
        for item in submission.items:
            rows.append(
                _Stored(
                    item.kind, number, item.position, item.capsule, item.sealed_metadata, item.blob_name, item.body_size
                )
            )
    replies = session.scalars(select(Reply).where(Reply.source_id == source.id).order_by(Reply.created_on, Reply.id))
    for position, reply in enumerate(replies):
        # Only the newsroom capsule: the source capsule is of no use to a reader of the bundle.
        rows.append(
            _Stored(
                "reply", None, position, reply.newsroom_capsule, reply.sealed_metadata, reply.blob_name, reply.body_size
            )
        )
    return rows


def bundle_chunks(store: BlobStore, plan: BundlePlan) -> Iterator[bytes]:
    """Yield the bundle as an uncompressed tar stream, holding at most one 64 KiB chunk.

    Tar headers come from ``TarInfo.tobuf`` and are written by hand rather
    than through ``tarfile``'s writer, so a web response can pull the stream
    chunk by chunk without a thread, a pipe or a temporary file.
    """
    yield _tar_header(MANIFEST_NAME, len(plan.manifest))
    yield plan.manifest
    yield bytes(_pad_size(len(plan.manifest)))
    for body in plan.bodies:
        yield _tar_header(body.member, body.size)
        yield from _stored_chunks(store, body)
        yield bytes(_pad_size(body.size))
    yield _tar_trailer(plan.members_size)


def _stored_chunks(store: BlobStore, body: _Body) -> Iterator[bytes]:
    with store.open(body.blob_name) as blob:
        remaining = body.size
        while remaining:
            chunk = blob.read(min(_COPY_SIZE, remaining))
            if not chunk:
                raise BundleError("A stored body shrank during the export.")
            remaining -= len(chunk)
            yield chunk


def write_bundle(*, session: Session, store: BlobStore, source_id: str, editor_id: str, sink: BinaryIO) -> None:
    """Write a source's bundle to ``sink`` (see ``plan_bundle`` for the errors)."""
    plan = plan_bundle(session=session, store=store, source_id=source_id, editor_id=editor_id)
    for chunk in bundle_chunks(store, plan):
        sink.write(chunk)


def _tar_header(name: str, size: int) -> bytes:
    # Fixed owner, mode and a zero mtime: the header says nothing about the server or the time of export.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _pad_size(size: int) -> int:
    return -size % tarfile.BLOCKSIZE


def _tar_trailer(offset: int) -> bytes:
    # Two zero blocks end the archive; the record padding matches tarfile's own writer.
    end = offset + 2 * tarfile.BLOCKSIZE
    return bytes(2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE))


def editor_key_file(*, session: Session, editor_id: str) -> bytes:
    """The editor's wrapped secret key as a key file (audited); opening it needs their passphrase."""
    editor = session.get(Editor, editor_id)
    if editor is None:
        raise ExportNotFound()
    document = {
        "format": KEY_FILE_FORMAT,
        "version": FORMAT_VERSION,
        "username": editor.username,
        "public_key": _b64encode(editor.public_key),
        "wrapped_secret_key": _b64encode(editor.wrapped_secret_key),
    }
    audit.record(session, actor=editor.username, action="key file export")
    session.commit()
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- the manifest and the key file as JSON -------------------------------------------


def manifest_json(manifest: Manifest) -> bytes:
    document = {
        "format": BUNDLE_FORMAT,
        "version": FORMAT_VERSION,
        "designation": manifest.designation,
        "editor_public_key": _b64encode(manifest.editor_public_key),
        "keys": [
            {
                "key_id": k.key_id.hex(),
                "public_key": _b64encode(k.public_key),
                "recovery_grant": _b64encode(k.recovery_grant),
                "editor_grant": _b64encode(k.editor_grant),
            }
            for k in manifest.keys
        ],
        "entries": [
            {
                "kind": e.kind,
                "submission": e.submission,
                "position": e.position,
                "body_size": e.body_size,
                "member": e.member,
                "capsule": _b64encode(e.capsule),
                "sealed_metadata": _b64encode(e.sealed_metadata),
            }
            for e in manifest.entries
        ],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def parse_manifest(raw: bytes) -> Manifest:
    """Parse and check a manifest; anything outside docs/export.md raises BundleError."""
    document = _fields(_json(raw, "manifest"), _MANIFEST_FIELDS, "manifest", BUNDLE_FORMAT)
    designation = document["designation"]
    if not isinstance(designation, str) or not 0 < len(designation) <= 80 or not _printable(designation):
        raise _malformed("manifest")
    keys = tuple(_parse_key(k) for k in _list(document["keys"], "manifest"))
    if len({k.key_id for k in keys}) != len(keys):
        raise _malformed("manifest")
    entries = tuple(_parse_entry(i, e) for i, e in enumerate(_list(document["entries"], "manifest")))
    return Manifest(designation, _b64(document["editor_public_key"], crypto.KEY_SIZE, "manifest"), keys, entries)


_MANIFEST_FIELDS = frozenset({"format", "version", "designation", "editor_public_key", "keys", "entries"})
_KEY_FIELDS = frozenset({"key_id", "public_key", "recovery_grant", "editor_grant"})
_ENTRY_FIELDS = frozenset({"kind", "submission", "position", "body_size", "member", "capsule", "sealed_metadata"})
_KEY_FILE_FIELDS = frozenset({"format", "version", "username", "public_key", "wrapped_secret_key"})


def _parse_key(value: object) -> ManifestKey:
    document = _fields(value, _KEY_FIELDS, "manifest")
    public_key = _b64(document["public_key"], crypto.KEY_SIZE, "manifest")
    if document["key_id"] != crypto.key_id(public_key).hex():
        raise _malformed("manifest")
    return ManifestKey(
        key_id=crypto.key_id(public_key),
        public_key=public_key,
        recovery_grant=_b64(document["recovery_grant"], crypto.SEALED_KEY_SIZE, "manifest"),
        editor_grant=_b64(document["editor_grant"], crypto.SEALED_KEY_SIZE, "manifest"),
    )


def _parse_entry(index: int, value: object) -> ManifestEntry:
    document = _fields(value, _ENTRY_FIELDS, "manifest")
    kind, submission = document["kind"], document["submission"]
    if not isinstance(kind, str) or kind not in crypto.KINDS or (submission is None) != (kind == "reply"):
        raise _malformed("manifest")
    body_size = _int(document["body_size"], "manifest", crypto.BODY_HEADER_SIZE + crypto.BODY_CHUNK_SIZE)
    if (body_size - crypto.BODY_HEADER_SIZE) % crypto.BODY_CHUNK_SIZE:
        raise _malformed("manifest")
    # Member names are fixed by the index, so no name from the bundle ever reaches the file system.
    if document["member"] != member_name(index):
        raise BundleError(f"Item {index + 1} of the manifest names an unexpected tar member.")
    return ManifestEntry(
        kind=kind,
        submission=None if submission is None else _int(submission, "manifest"),
        position=_int(document["position"], "manifest"),
        body_size=body_size,
        member=member_name(index),
        capsule=_b64(document["capsule"], crypto.CAPSULE_SIZE, "manifest"),
        sealed_metadata=_b64(document["sealed_metadata"], crypto.META_SIZE, "manifest"),
    )


def read_key_file(raw: bytes) -> EditorKeyFile:
    """Parse and check an editor key file; the wrapped key's KDF limits are checked too."""
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise _malformed("key file")
    document = _fields(_json(raw, "key file"), _KEY_FILE_FIELDS, "key file", KEY_FILE_FORMAT)
    username = document["username"]
    if not isinstance(username, str) or not 0 < len(username) <= 64 or not _printable(username):
        raise _malformed("key file")
    wrapped = _b64(document["wrapped_secret_key"], crypto.WRAPPED_KEY_SIZE, "key file")
    try:
        crypto.wrapped_key_params(wrapped)
    except crypto.DecryptionError as e:
        raise _malformed("key file") from e
    return EditorKeyFile(username, _b64(document["public_key"], crypto.KEY_SIZE, "key file"), wrapped)


def _json(raw: bytes, what: str) -> object:
    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        if len({name for name, _ in pairs}) != len(pairs):
            raise ValueError("duplicate member")
        return dict(pairs)

    try:
        document: object = json.loads(raw.decode("utf-8"), object_pairs_hook=unique)
    except (ValueError, RecursionError) as e:
        raise _malformed(what) from e
    return document


def _fields(value: object, names: frozenset[str], what: str, format_name: str | None = None) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _malformed(what)
    if format_name is not None and value.get("format") != format_name:
        raise BundleError(f"This is not a Buzón {what}.")
    version = value.get("version")
    if format_name is not None and (type(version) is not int or version != FORMAT_VERSION):
        raise BundleError(f"This {what} has a version this program does not know.")
    if value.keys() != names:
        raise _malformed(what)
    return cast(dict[str, object], value)


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise _malformed(what)
    return cast(list[object], value)


def _int(value: object, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _malformed(what)
    return value


def _b64(value: object, size: int, what: str) -> bytes:
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raw = b""
        # Only the canonical encoding, so parsing and re-serialising give the same bytes.
        if len(raw) == size and _b64encode(raw) == value:
            return raw
    raise _malformed(what)


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _printable(text: str) -> bool:
    return not any(unicodedata.category(c)[0] == "C" for c in text)


def _malformed(what: str) -> BundleError:
    return BundleError(f"The {what} is malformed.")


# --- opening a bundle offline ----------------------------------------------------------


def decrypt_bundle(
    bundle_path: Path,
    out_dir: Path,
    *,
    key_file: bytes | None = None,
    passphrase: str | None = None,
    recovery_secret: str | None = None,
    progress: Progress | None = None,
) -> DecryptReport:
    """Decrypt every item of a bundle into ``out_dir``, which must be new or empty.

    Give either ``key_file`` and ``passphrase`` or ``recovery_secret``. Keys and
    every capsule and metadata record are opened before anything is written,
    so a wrong key leaves no output. Any later failure removes every file this
    call wrote, and ``out_dir`` too if this call created it.
    """
    if (key_file is None) == (recovery_secret is None):
        raise ValueError("give either a key file and its passphrase, or the recovery secret")
    with bundle_path.open("rb") as raw, _open_tar(raw) as tar:
        manifest = parse_manifest(_read_member(tar, MANIFEST_NAME, None, MAX_MANIFEST_BYTES))
        if key_file is not None:
            newsroom_keys = _unlock_with_key_file(manifest, read_key_file(key_file), passphrase or "")
        else:
            newsroom_keys = _unlock_with_recovery(manifest, recovery_secret or "")
        opened = _open_entries(manifest, newsroom_keys)
        with _Output(out_dir) as output:
            for item in opened:
                _decrypt_body(tar, item, output, progress)
            if _next_member(tar) is not None:
                raise BundleError("The bundle holds more members than its manifest lists.")
            entries = tuple(item.report_entry() for item in sorted(opened, key=lambda o: o.order))
            report = DecryptReport(manifest.designation, out_dir, entries)
            output.write_text(REPORT_NAME, report_text(report))
    return report


def report_text(report: DecryptReport) -> str:
    lines = [f"Buzón bundle: {report.designation}", f"Items: {len(report.entries)}", ""]
    for entry in report.entries:
        lines.append(entry.file)
        if entry.kind == "file" and entry.name != entry.file:
            lines.append(f"  name as sent: {entry.name}")
        lines += [
            f"  kind:         {entry.kind}",
            f"  size:         {entry.size} bytes",
            f"  type:         {entry.type}",
            f"  received:     {entry.received}",
            f"  sha256:       {entry.sha256}",
            f"  sha256 check: {'matches' if entry.sha256_matches else 'DOES NOT MATCH'}",
        ]
        if entry.sanitised:
            lines.append(f"  metadata:     {entry.sanitised}")
        lines.append("")
    return "\n".join(lines)


def _open_tar(raw: BinaryIO) -> tarfile.TarFile:
    # "r|" reads forward only and never decompresses: no seeking, no compression bombs.
    try:
        return tarfile.open(fileobj=raw, mode="r|")
    except tarfile.TarError as e:
        raise BundleError("This is not a Buzón bundle (not a tar file).") from e


def _next_member(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except tarfile.TarError as e:
        raise BundleError("The bundle is damaged (unreadable tar header).") from e


def _expect_member(tar: tarfile.TarFile, name: str, size: int | None, max_size: int) -> BinaryIO:
    member = _next_member(tar)
    if member is None:
        raise BundleError(f"The bundle ends before {name}.")
    if member.name != name:
        raise BundleError(f"The bundle holds an unexpected member {member.name!r} where {name} should be.")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
        raise BundleError(f"{name} in the bundle is not a regular file.")
    if member.size > max_size or (size is not None and member.size != size):
        raise BundleError(f"{name} in the bundle does not have the size its manifest says.")
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file always has a stream
    return cast(BinaryIO, stream)


def _read_member(tar: tarfile.TarFile, name: str, size: int | None, max_size: int) -> bytes:
    stream = _expect_member(tar, name, size, max_size)
    try:
        return stream.read()
    except tarfile.TarError as e:
        raise BundleError(f"The bundle is truncated in {name}.") from e


def _unlock_with_key_file(manifest: Manifest, key_file: EditorKeyFile, passphrase: str) -> dict[bytes, crypto.KeyPair]:
    # Checked before Argon2id runs: a key file of another editor cannot open this bundle's grants.
    if key_file.public_key != manifest.editor_public_key:
        raise WrongKey("This key file belongs to another editor than the one who exported the bundle.")
    try:
        editor = crypto.unwrap_secret_key(key_file.wrapped_secret_key, passphrase)
    except (crypto.DecryptionError, crypto.InputTooLongError) as e:
        raise WrongKey("Wrong passphrase for this key file.") from e
    if editor.public != key_file.public_key:
        raise BundleError("The key file is inconsistent.")
    return _open_grants(manifest, editor, [k.editor_grant for k in manifest.keys], "The key file")


def _unlock_with_recovery(manifest: Manifest, recovery_secret: str) -> dict[bytes, crypto.KeyPair]:
    try:
        recovery = crypto.recovery_keypair(recovery_secret)
    except crypto.DecryptionError as e:
        raise WrongKey("That is not a recovery secret (32 letters A-Z and digits 2-7).") from e
    return _open_grants(manifest, recovery, [k.recovery_grant for k in manifest.keys], "That recovery secret")


def _open_grants(
    manifest: Manifest, opener: crypto.KeyPair, grants: list[bytes], who: str
) -> dict[bytes, crypto.KeyPair]:
    keys = {}
    for key, grant in zip(manifest.keys, grants, strict=True):
        try:
            newsroom = crypto.open_sealed_keypair(opener, grant)
        except crypto.DecryptionError as e:
            raise WrongKey(f"{who} does not open this bundle.") from e
        if newsroom.public != key.public_key:
            raise BundleError("A newsroom key in the manifest does not match its grant.")
        keys[key.key_id] = newsroom
    return keys


@dataclass(frozen=True, repr=False)
class _Opened:
    index: int
    entry: ManifestEntry
    data_key: bytes
    metadata: crypto.EnvelopeMetadata
    order: tuple[str, int]
    file: str = ""

    def report_entry(self) -> ReportEntry:
        m = self.metadata
        return ReportEntry(self.file, m.kind, m.name, m.type, m.size, m.sha256, m.received, m.sanitised, True)


def _open_entries(manifest: Manifest, newsroom_keys: dict[bytes, crypto.KeyPair]) -> list[_Opened]:
    opened = []
    for index, entry in enumerate(manifest.entries):
        try:
            data_key = crypto.open_capsule(entry.capsule, newsroom_keys)
            metadata = crypto.open_metadata(data_key, entry.sealed_metadata)
        except crypto.DecryptionError as e:
            raise BundleError(f"Item {index + 1} cannot be opened: the bundle is damaged or was tampered with.") from e
        # The kind and size in the manifest are in the clear; the metadata record is authenticated.
        if metadata.kind != entry.kind or entry.body_size != crypto.body_size(metadata.size):
            raise BundleError(f"Item {index + 1} does not match its manifest entry: the bundle was tampered with.")
        # Times are to the second; within one, the manifest order (submission, then position) decides.
        order = (metadata.received, index)
        opened.append(_Opened(index, entry, data_key, metadata, order))
    return _name_outputs(opened)


def _name_outputs(opened: list[_Opened]) -> list[_Opened]:
    """Messages and replies are numbered in order of receipt; files keep their (made safe) names."""
    by_time = sorted(opened, key=lambda o: o.order)
    width = max(2, len(str(len(by_time))))
    names: dict[int, str] = {}
    for number, item in enumerate(by_time, start=1):
        if item.metadata.kind != "file":
            names[item.index] = f"{number:0{width}d}-{item.metadata.kind}.txt"
    taken = {REPORT_NAME.casefold()} | {name.casefold() for name in names.values()}
    for item in by_time:
        if item.metadata.kind == "file":
            names[item.index] = _unused_name(safe_filename(item.metadata.name), taken)
            taken.add(names[item.index].casefold())
    return [dataclasses.replace(o, file=names[o.index]) for o in opened]


def safe_filename(name: str) -> str:
    """A single path component that is safe to create on Linux, macOS and Windows.

    Separators, NUL, control and format characters go, as do leading dots (no
    hidden files, no ``..``) and trailing dots and spaces; the length is capped.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if c in '/\\:*?"<>|' else c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r"^[\s.]+|[\s.]+$", "", name)
    if name.split(".", 1)[0].rstrip().upper() in _WINDOWS_RESERVED:
        name = f"_{name}"
    stem, ext = _split_extension(name)
    room = MAX_OUTPUT_NAME_BYTES - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip(". ")
    return f"{stem}{ext}" if stem else f"unnamed{ext}"


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16 or not ext.isalnum():
        return name, ""
    return stem, f".{ext}"


def _unused_name(name: str, taken: set[str]) -> str:
    stem, ext = _split_extension(name)
    candidate, counter = name, 1
    # Case-folded, for file systems that ignore case (macOS, Windows).
    while candidate.casefold() in taken:
        counter += 1
        candidate = f"{stem} ({counter}){ext}"
    return candidate


def _decrypt_body(tar: tarfile.TarFile, item: _Opened, output: _Output, progress: Progress | None) -> None:
    stream = _expect_member(tar, item.entry.member, item.entry.body_size, item.entry.body_size)
    size, digest, done = item.metadata.size, hashlib.sha256(), 0
    with output.create(item.file) as sink:
        try:
            for chunk in crypto.read_body(item.data_key, stream, size):
                digest.update(chunk)
                sink.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(item.file, done, size)
        except crypto.DecryptionError as e:
            raise BundleError(f"{item.file}: the body fails to authenticate; the bundle was tampered with.") from e
        except tarfile.TarError as e:
            raise BundleError(f"{item.file}: the bundle is truncated.") from e
    if digest.hexdigest() != item.metadata.sha256:
        raise BundleError(f"{item.file}: the SHA-256 of the decrypted bytes differs from the one recorded.")


class _Output:
    """The files one decryption writes; if it fails, all of them are removed."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._created_root = False
        self._written: list[Path] = []

    def __enter__(self) -> _Output:
        if self._root.exists():
            if not self._root.is_dir() or any(self._root.iterdir()):
                raise BundleError(f"{self._root} exists and is not an empty directory.")
        else:
            self._root.mkdir(mode=0o700, parents=True)
            self._created_root = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            return
        for path in self._written:
            path.unlink(missing_ok=True)
        if self._created_root:
            with contextlib.suppress(OSError):
                self._root.rmdir()

    def create(self, name: str) -> BinaryIO:
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise BundleError("Refusing an unsafe output name.")
        path = self._root / name
        # O_EXCL and O_NOFOLLOW: never overwrite, never follow a link planted in the directory.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o600)
        self._written.append(path)
        return os.fdopen(fd, "wb")

    def write_text(self, name: str, text: str) -> None:
        with self.create(name) as sink:
            sink.write(text.encode("utf-8"))
