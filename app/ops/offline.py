"""Opening an export bundle offline, for ``buzon decrypt`` (docs/export.md).

It needs no settings, no database and no data directory: only the bundle, and
a key file with its passphrase or the recovery secret.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from app import crypto
from app.formats.bundle import (
    BUNDLE_MANIFEST,
    BundleError,
    BundleManifest,
    EditorKeyFile,
    ManifestEntry,
    parse_bundle_manifest,
    read_key_file,
)
from app.formats.filenames import safe_filename, unused_name
from app.ops.archives import open_plain_tar

REPORT_NAME = "report.txt"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024

# (file name, bytes done, bytes in that file), called as each file is written.
FileProgress = Callable[[str, int, int], None]
"""Called as ``progress(file name, bytes written, total bytes)`` while a body is decrypted."""


class WrongKey(BundleError):
    """The key file, passphrase or recovery secret does not open this bundle."""


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


def decrypt_bundle(
    bundle_path: Path,
    out_dir: Path,
    *,
    key_file: bytes | None = None,
    passphrase: str | None = None,
    recovery_secret: str | None = None,
    progress: FileProgress | None = None,
) -> DecryptReport:
    """Decrypt every item of a bundle into ``out_dir``, which must be new or empty.

    Give either ``key_file`` and ``passphrase`` or ``recovery_secret``. Keys and
    every capsule and metadata record are opened before anything is written,
    so a wrong key leaves no output. Any later failure removes every file this
    call wrote, and ``out_dir`` too if this call created it.
    """
    if (key_file is None) == (recovery_secret is None):
        raise ValueError("give either a key file and its passphrase, or the recovery secret")
    not_a_tar = BundleError("This is not a Buzón bundle (not a tar file).")
    with bundle_path.open("rb") as raw, open_plain_tar(raw, forward_only=True, error=not_a_tar) as tar:
        manifest = parse_bundle_manifest(_read_member(tar, BUNDLE_MANIFEST, None, MAX_MANIFEST_BYTES))
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


def _unlock_with_key_file(manifest: BundleManifest, key_file: EditorKeyFile, passphrase: str) -> crypto.NewsroomKeys:
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


def _unlock_with_recovery(manifest: BundleManifest, recovery_secret: str) -> crypto.NewsroomKeys:
    try:
        recovery = crypto.recovery_keypair(recovery_secret)
    except crypto.DecryptionError as e:
        raise WrongKey("That is not a recovery secret (32 letters A-Z and digits 2-7).") from e
    return _open_grants(manifest, recovery, [k.recovery_grant for k in manifest.keys], "That recovery secret")


def _open_grants(
    manifest: BundleManifest, opener: crypto.KeyPair, grants: list[bytes], who: str
) -> crypto.NewsroomKeys:
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


def _open_entries(manifest: BundleManifest, newsroom_keys: crypto.NewsroomKeys) -> list[_Opened]:
    opened = []
    for index, entry in enumerate(manifest.entries):
        try:
            data_key = crypto.open_capsule(entry.capsule, newsroom_keys)
            # The rows' ids are not in a bundle: owners are checked against each other below.
            metadata = crypto.open_metadata(data_key, entry.sealed_metadata, owner=None)
        except crypto.DecryptionError as e:
            raise BundleError(f"Item {index + 1} cannot be opened: the bundle is damaged or was tampered with.") from e
        # The kind and size in the manifest are in the clear; the metadata record is authenticated.
        if metadata.kind != entry.kind or entry.body_size != crypto.body_size(metadata.size):
            raise BundleError(f"Item {index + 1} does not match its manifest entry: the bundle was tampered with.")
        # Times are to the second; within one, the manifest order (submission, then position) decides.
        order = (metadata.received, index)
        opened.append(_Opened(index, entry, data_key, metadata, order))
    _check_owners(opened)
    return _name_outputs(opened)


def _check_owners(opened: list[_Opened]) -> None:
    """Envelopes that name their owner (metadata version 0x02) must name the manifest's grouping.

    Items of one submission name one submission, items of different ones name
    different ones, and every reply names the same source, which no item names.
    """
    owners: dict[int | None, set[str]] = {}
    for item in opened:
        if item.metadata.owner:
            owners.setdefault(item.entry.submission, set()).add(item.metadata.owner)
    named = [owner for group in owners.values() for owner in group]
    if any(len(group) > 1 for group in owners.values()) or len(named) != len(set(named)):
        raise BundleError("Items of this bundle name submissions other than their own: the bundle was tampered with.")


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
            names[item.index] = unused_name(safe_filename(item.metadata.name), taken)
            taken.add(names[item.index].casefold())
    return [dataclasses.replace(o, file=names[o.index]) for o in opened]


def _decrypt_body(tar: tarfile.TarFile, item: _Opened, output: _Output, progress: FileProgress | None) -> None:
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
