"""The export bundle and the editor key file (docs/export.md): their bytes, with no database.

A bundle is an uncompressed tar of a manifest and a source's envelopes exactly
as stored; a key file is an editor's wrapped secret key as JSON. Both are read
back by ``buzon decrypt`` on an offline machine (app/ops/offline.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import tarfile
import unicodedata
from dataclasses import dataclass
from typing import cast

from app import crypto

BUNDLE_FORMAT = "buzon-bundle"
KEY_FILE_FORMAT = "buzon-editor-key"
BUNDLE_VERSION = 1
BUNDLE_MANIFEST = "manifest.json"
MAX_KEY_FILE_BYTES = 4096


class BundleError(Exception):
    """A bundle or key file is malformed, tampered with, or cannot be written out."""


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
class BundleManifest:
    designation: str
    editor_public_key: bytes
    keys: tuple[ManifestKey, ...]
    entries: tuple[ManifestEntry, ...]


@dataclass(frozen=True, repr=False)
class EditorKeyFile:
    username: str
    public_key: bytes
    wrapped_secret_key: bytes

    def __repr__(self) -> str:
        return f"EditorKeyFile({self.username!r})"


def member_name(index: int) -> str:
    return f"bodies/{index}"


def tar_header(name: str, size: int) -> bytes:
    # Fixed owner, mode and a zero mtime: the header says nothing about the server or the time of export.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def pad_size(size: int) -> int:
    return -size % tarfile.BLOCKSIZE


def tar_trailer(offset: int) -> bytes:
    # Two zero blocks end the archive; the record padding matches tarfile's own writer.
    end = offset + 2 * tarfile.BLOCKSIZE
    return bytes(2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE))


def key_file_json(key_file: EditorKeyFile) -> bytes:
    document = {
        "format": KEY_FILE_FORMAT,
        "version": BUNDLE_VERSION,
        "username": key_file.username,
        "public_key": _b64encode(key_file.public_key),
        "wrapped_secret_key": _b64encode(key_file.wrapped_secret_key),
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def bundle_manifest_json(manifest: BundleManifest) -> bytes:
    document = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
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


def parse_bundle_manifest(raw: bytes) -> BundleManifest:
    """Parse and check a manifest; anything outside docs/export.md raises BundleError."""
    document = _fields(_json(raw, "manifest"), _MANIFEST_FIELDS, "manifest", BUNDLE_FORMAT)
    designation = document["designation"]
    if not isinstance(designation, str) or not 0 < len(designation) <= 80 or not _printable(designation):
        raise _malformed("manifest")
    keys = tuple(_parse_key(k) for k in _list(document["keys"], "manifest"))
    if len({k.key_id for k in keys}) != len(keys):
        raise _malformed("manifest")
    entries = tuple(_parse_entry(i, e) for i, e in enumerate(_list(document["entries"], "manifest")))
    return BundleManifest(designation, _b64(document["editor_public_key"], crypto.KEY_SIZE, "manifest"), keys, entries)


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
    if format_name is not None and (type(version) is not int or version != BUNDLE_VERSION):
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
