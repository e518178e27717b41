"""The evidence package (docs/evidence.md, "Packages"): its layout, and checking it with no key.

``verify_package`` is what `buzon evidence verify` runs on an opened package:
no server, no database, no secret; every check is named, so that an altered
byte gives a failure that says what it broke.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography import x509

from app import crypto
from app.evidence import acta, merkle, timestamps
from app.evidence.anchors import SIGN_ANCHOR, Head
from app.evidence.canonical import NotCanonical, b64_decode, canonical, parse_canonical
from app.evidence.custody import INSTANCE_ACTOR, RECEIVED, BadEntry, Entry, parse_entry
from app.evidence.identity import fingerprint
from app.evidence.receipts import BadReceipt, Receipt, parse_receipt

PACKAGE_FORMAT = 1
PACKAGE_FILE = "package.json"
SIGN_KEY = b"buzon-sign-key-v1:"
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

# The failures a verifier names (docs/evidence.md, "Verification").
CONTENT_ALTERED = "content altered"
RECEIPT_ALTERED = "receipt altered"
PROOF_BROKEN = "proof broken"
ANCHOR_NOT_SIGNED = "anchor not signed by this instance"
TIMESTAMP_INVALID = "time stamp invalid"
CUSTODY_ALTERED = "custody entry {n} altered"
CUSTODY_UNSIGNED = "custody entry {n} unsigned"
CUSTODY_REVOKED = "custody entry {n} signed after revocation"
CUSTODY_MISSING = "custody entry {n} missing or reordered"
DOCUMENT_ALTERED = "{name} altered"
ACTA_MISMATCH = "{name} does not say what the receipts, anchors and custody entries say"


class BadPackage(ValueError):
    """A package whose structure is not docs/evidence.md's: nothing in it can be checked."""


@dataclass(frozen=True)
class Proof:
    anchor: str  # the anchor's name in anchors/, or "" while the leaf waits for its day's anchor
    index: int = 0
    size: int = 0
    path: tuple[bytes, ...] = ()

    def document(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "index": self.index, "size": self.size, "path": [p.hex() for p in self.path]}


def proof_from(fields: Any) -> Proof:
    try:
        path = tuple(bytes.fromhex(p) for p in fields["path"])
        proof = Proof(anchor=fields["anchor"], index=fields["index"], size=fields["size"], path=path)
    except (KeyError, TypeError, ValueError) as e:
        raise BadPackage("a proof is malformed") from e
    if not isinstance(proof.anchor, str) or not all(len(p) == 32 for p in path):
        raise BadPackage("a proof is malformed")
    return proof


def key_statement(*, instance: str, editor: str, key: bytes, until: str = "") -> bytes:
    """An editor key statement (docs/evidence.md, "Editor signing keys"), to be signed by the instance key."""
    return canonical(
        {
            "statement": "editor-key",
            "version": 1,
            "instance": instance,
            "editor": editor,
            "key": key.hex(),
            "from": "",
            "until": until,
        }
    )


# --- reading -----------------------------------------------------------------------------


class Members(Protocol):
    """An opened package's files by name: a directory, or the tar archive itself."""

    def read(self, name: str) -> bytes: ...

    def digest(self, name: str) -> tuple[int, str]: ...

    def has(self, name: str) -> bool: ...


class _Directory:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        path = self._root / name
        if not path.is_file() or path.is_symlink():
            raise BadPackage(f"{name} is missing")
        return path

    def has(self, name: str) -> bool:
        return (self._root / name).is_file()

    def read(self, name: str) -> bytes:
        path = self._path(name)
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise BadPackage(f"{name} is too large")
        return path.read_bytes()

    def digest(self, name: str) -> tuple[int, str]:
        with self._path(name).open("rb") as f:
            return _digest(f)


class _Archive:
    """Regular members only, each name once; links, devices and the like are refused."""

    def __init__(self, archive: tarfile.TarFile) -> None:
        self._archive = archive
        self._members: dict[str, tarfile.TarInfo] = {}
        for member in archive.getmembers():
            if member.isdir():
                continue
            if not member.isreg() or member.name in self._members:
                raise BadPackage(f"{member.name} is not a plain file")
            self._members[member.name] = member

    def _open(self, name: str) -> IO[bytes]:
        member = self._members.get(name)
        extracted = self._archive.extractfile(member) if member is not None else None
        if extracted is None:
            raise BadPackage(f"{name} is missing")
        return extracted

    def has(self, name: str) -> bool:
        return name in self._members

    def read(self, name: str) -> bytes:
        if name in self._members and self._members[name].size > MAX_DOCUMENT_BYTES:
            raise BadPackage(f"{name} is too large")
        return self._open(name).read()

    def digest(self, name: str) -> tuple[int, str]:
        return _digest(self._open(name))


def _digest(stream: IO[bytes]) -> tuple[int, str]:
    hasher, size = hashlib.sha256(), 0
    while chunk := stream.read(1 << 20):
        hasher.update(chunk)
        size += len(chunk)
    return size, hasher.hexdigest()


@contextlib.contextmanager
def open_package(path: Path) -> Iterator[Members]:
    """A package written out as a directory, or the tar archive `buzon evidence package` writes."""
    if path.is_dir():
        yield _Directory(path)
        return
    try:
        with tarfile.open(path, mode="r:") as archive:  # uncompressed only, as written
            yield _Archive(archive)
    except (tarfile.TarError, OSError) as e:
        raise BadPackage("not a readable package archive") from e


def _document(members: Members, name: str) -> dict[str, Any]:
    try:
        return parse_canonical(members.read(name))
    except NotCanonical as e:
        raise BadPackage(f"{name} is not canonical JSON") from e


def _b64(value: Any) -> bytes:
    try:
        return b64_decode(value)
    except NotCanonical as e:
        raise BadPackage(str(e)) from e


# --- verifying ---------------------------------------------------------------------------


@dataclass
class ItemVerdict:
    n: int
    name: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stamped_at: dt.datetime | None = None

    @property
    def verified(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Anchor:
    statement: bytes
    fields: dict[str, Any]
    reply: bytes
    signature: bytes
    head: Head


def verify_package(path: Path, tsa_roots: list[x509.Certificate] | None = None) -> list[ItemVerdict]:
    """One verdict per item of the package at ``path``, a directory or its tar archive."""
    with open_package(path) as members:
        return _verify(members, tsa_roots)


def _verify(root: Members, tsa_roots: list[x509.Certificate] | None) -> list[ItemVerdict]:
    package = _document(root, PACKAGE_FILE)
    if package.get("package") != PACKAGE_FORMAT:
        raise BadPackage("not an evidence package of version 1")
    instance_public = _b64(package["instance"]["public_key"])
    instance = fingerprint(instance_public)
    if package["instance"]["fingerprint"] != instance:
        raise BadPackage("the instance key does not match its fingerprint")
    roots = tsa_roots
    if roots is None and root.has("tsa/ca.pem"):
        roots = timestamps.load_roots(root.read("tsa/ca.pem"))
    anchors = {name: _load_anchor(root, name) for name in package["anchors"]}
    keys = _editor_keys(package["editor_keys"], instance, instance_public)
    check_anchor = _anchor_checker(anchors, instance, instance_public, roots or [])
    checked = [_verify_item(root, item, check_anchor, keys, anchors) for item in package["items"]]
    verdicts = [verdict for verdict, _ in checked]
    documents = package.get("documents", {})
    if documents:
        acta_items = [item for _, item in checked if item is not None]
        made = dt.date.fromisoformat(str(package["made"]))
        verdicts.append(_verify_documents(root, documents, instance, made, acta_items))
    return verdicts


def _verify_documents(
    root: Members, documents: dict[str, Any], instance: str, made: dt.date, items: list[acta.ActaItem]
) -> ItemVerdict:
    """The actas, the guides and the anchors' own files: each as package.json lists it, and each
    acta exactly what this version writes from the checked receipts, anchors and custody."""
    verdict = ItemVerdict(n=-1, name="record of receipt, guides and time-stamp files")
    for name, expected in sorted(documents.items()):
        if not root.has(name) or root.digest(name)[1] != expected:
            verdict.failures.append(DOCUMENT_ALTERED.format(name=name))
    for language in acta.LANGUAGES:
        name = f"acta-{language}.pdf"
        if root.has(name) and root.read(name) != acta.acta_pdf(language, instance=instance, made=made, items=items):
            verdict.failures.append(ACTA_MISMATCH.format(name=name))
    return verdict


def _load_anchor(root: Members, name: str) -> _Anchor:
    if not isinstance(name, str) or not name.replace("-", "").isalnum():
        raise BadPackage("a bad anchor name")
    fields = _document(root, f"anchors/{name}.json")
    head = fields["head"]
    statement = canonical(fields["statement"])
    return _Anchor(
        statement,
        fields["statement"],
        _b64(fields["reply"]),
        _b64(fields["signature"]),
        Head(head["head"], head["seq"]),
    )


def _editor_keys(statements: Any, instance: str, instance_public: bytes) -> dict[str, tuple[str, str]]:
    """Key (hex) to (editor, revocation day or ""), for statements the instance key signed."""
    keys: dict[str, tuple[str, str]] = {}
    for signed in statements:
        statement = canonical(signed["statement"])
        if not crypto.signature_valid(instance_public, SIGN_KEY, statement, _b64(signed["signature"])):
            continue  # an unsigned statement vouches for nothing
        fields = signed["statement"]
        if fields.get("statement") == "editor-key" and fields.get("instance") == instance:
            keys[fields["key"]] = (fields["editor"], fields["until"])
    return keys


AnchorCheck = Callable[[bytes, Proof], tuple[list[str], dt.datetime | None]]


def _anchor_checker(
    anchors: dict[str, _Anchor], instance: str, public: bytes, roots: list[x509.Certificate]
) -> AnchorCheck:
    def check(leaf: bytes, proof: Proof) -> tuple[list[str], dt.datetime | None]:
        if not proof.anchor:
            return [], None
        anchor = anchors.get(proof.anchor)
        if anchor is None:
            return [PROOF_BROKEN], None
        root = merkle.root_from_path(leaf, proof.index, proof.size, proof.path)
        if root is None or root.hex() != anchor.fields.get("root") or proof.size != anchor.fields.get("leaves"):
            return [PROOF_BROKEN], None
        failures = []
        if anchor.fields.get("instance") != instance or not crypto.signature_valid(
            public, SIGN_ANCHOR, anchor.statement, anchor.signature
        ):
            failures.append(ANCHOR_NOT_SIGNED)
        try:
            stamped = timestamps.check_reply(anchor.reply, anchor.statement, roots)
        except timestamps.BadTimestamp:
            return [*failures, TIMESTAMP_INVALID], None
        return failures, stamped

    return check


def _verify_item(
    root: Members,
    item: dict[str, Any],
    check_anchor: AnchorCheck,
    keys: dict[str, tuple[str, str]],
    anchors: dict[str, _Anchor],
) -> tuple[ItemVerdict, acta.ActaItem | None]:
    n = item["n"]
    verdict = ItemVerdict(n=n, name=str(item.get("name", "")))
    content = root.digest(f"items/{n}/content")
    try:
        receipt = parse_receipt(root.read(f"items/{n}/receipt.json"))
    except BadReceipt:
        verdict.failures.append(RECEIPT_ALTERED)
        return verdict, None
    if content != (receipt.stored_size, receipt.stored_sha256):
        verdict.failures.append(CONTENT_ALTERED)
    try:
        commitment = bytes.fromhex(item["commitment"])
    except (TypeError, ValueError) as e:
        raise BadPackage("an item's commitment is not hex") from e
    if receipt.commitment() != commitment:
        # The rest is checked against the commitment the package names, so each failure stays its own.
        verdict.failures.append(RECEIPT_ALTERED)
    proof = proof_from(item["proof"])
    failures, verdict.stamped_at = check_anchor(commitment, proof)
    verdict.failures += failures
    if not proof.anchor:
        verdict.notes.append("the receipt is not yet anchored: its day's time stamp has not been made")
    custody_failures, entries = _custody_failures(root, n, commitment, receipt, check_anchor, keys, verdict)
    verdict.failures += custody_failures
    anchor = anchors.get(proof.anchor)
    if anchor is None:
        return verdict, acta.item_for(n, receipt, "", None, entries)
    try:
        stamped = timestamps.stamp_time(anchor.reply)
    except timestamps.BadTimestamp:
        stamped = None
    return verdict, acta.item_for(n, receipt, str(anchor.fields.get("day", "")), stamped, entries)


def _custody_failures(
    root: Members,
    n: int,
    commitment: bytes,
    receipt: Receipt,
    check_anchor: AnchorCheck,
    keys: dict[str, tuple[str, str]],
    verdict: ItemVerdict,
) -> tuple[list[str], list[Entry]]:
    failures: list[str] = []
    entries: list[Entry] = []
    listed = _document(root, f"items/{n}/custody.json")["entries"]
    previous = ""
    for index, listing in enumerate(listed):
        try:
            entry = parse_entry(canonical(listing["entry"]))
        except (BadEntry, NotCanonical, KeyError):
            failures.append(CUSTODY_ALTERED.format(n=index))
            continue
        if entry.item != commitment.hex() or entry.instance != receipt.instance:
            failures.append(CUSTODY_ALTERED.format(n=index))
        if entry.item_prev != previous or (index == 0) != (entry.action == RECEIVED):
            failures.append(CUSTODY_MISSING.format(n=index))
        failures += _signature_failures(entry, index, keys)
        entry_failures, _ = check_anchor(entry.commitment(), proof_from(listing["proof"]))
        failures += [f"{f} (custody entry {index})" for f in entry_failures]
        if not listing["proof"]["anchor"]:
            verdict.notes.append(f"custody entry {index} is not yet anchored")
        previous = entry.link()
        entries.append(entry)
    if not listed:
        failures.append(CUSTODY_MISSING.format(n=0))
    return failures, entries


def _signature_failures(entry: Entry, index: int, keys: dict[str, tuple[str, str]]) -> Iterator[str]:
    if entry.actor == INSTANCE_ACTOR:
        if not entry.signature_valid():
            yield CUSTODY_ALTERED.format(n=index)
        return
    known = keys.get(entry.key)
    if not entry.signature_valid():
        yield CUSTODY_ALTERED.format(n=index)
    elif known is None or known[0] != entry.actor:
        yield CUSTODY_UNSIGNED.format(n=index)
    elif known[1] and entry.time[:10] > known[1]:
        yield CUSTODY_REVOKED.format(n=index)
