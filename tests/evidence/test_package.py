"""Evidence packages (docs/evidence.md, "Packages"): verified offline with no key, and every tampering named."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import Source
from app.evidence import package
from app.evidence.canonical import canonical
from tests.support import Instance, server_env
from tests.support.evidence import EDITOR, FILE


@pytest.fixture
def packaged(tmp_path: Path, built_package: tuple[Path, Path]) -> Path:
    """A tip that arrived, was viewed and downloaded, anchored yesterday by a real authority, and packaged."""
    archive, _ = built_package
    assert package.verify_package(archive)[0].verified  # the archive itself verifies, as its files do below
    return _extracted(archive, tmp_path / "package")


def _extracted(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        assert all(m.mtime == 0 and m.mode == 0o600 and m.uname == "" for m in tar.getmembers())
        tar.extractall(into, filter="data")
    return into


def _tampered(packaged: Path, tmp_path: Path, change: Callable[[Path], None]) -> list[package.ItemVerdict]:
    copy = tmp_path / "tampered"
    shutil.copytree(packaged, copy)
    change(copy)
    return package.verify_package(copy)


def _file_item(root: Path) -> str:
    listed = json.loads((root / "package.json").read_bytes())["items"]
    return str(next(item["n"] for item in listed if item["name"] == "contract.pdf"))


def _failures(verdicts: list[package.ItemVerdict]) -> list[str]:
    """The items' failures; the documents' verdict (n = -1) is checked on its own."""
    return [f for v in verdicts if v.n >= 0 for f in v.failures]


def _document_failures(verdicts: list[package.ItemVerdict]) -> list[str]:
    return [f for v in verdicts if v.n < 0 for f in v.failures]


def test_a_package_verifies_offline_with_every_check_passing(packaged: Path) -> None:
    verdicts = package.verify_package(packaged)
    assert [v.failures for v in verdicts] == [[], [], []]  # two items, and the documents
    assert all(v.verified and v.stamped_at is not None for v in verdicts if v.n >= 0)
    assert all(v.notes == [] for v in verdicts)  # every receipt and entry is anchored
    n = _file_item(packaged)
    assert (packaged / "items" / n / "content").read_bytes() == FILE
    actions = [
        e["entry"]["action"] for e in json.loads((packaged / "items" / n / "custody.json").read_bytes())["entries"]
    ]
    assert actions == ["received", "opened", "downloaded"]


def _flip(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def _edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    fields = json.loads(path.read_bytes())
    change(fields)
    path.write_bytes(canonical(fields))


def test_one_flipped_byte_of_a_stored_copy_is_content_altered(packaged: Path, tmp_path: Path) -> None:
    verdicts = _tampered(packaged, tmp_path, lambda root: _flip(root / "items" / _file_item(root) / "content"))
    assert _failures(verdicts) == [package.CONTENT_ALTERED]


def test_an_edited_receipt_is_receipt_altered(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        _edit_json(root / "items" / _file_item(root) / "receipt.json", lambda r: r.update(sent_size=1))

    assert _failures(_tampered(packaged, tmp_path, change)) == [package.RECEIPT_ALTERED]


def test_a_flipped_proof_is_proof_broken(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        def flip_path(fields: dict[str, object]) -> None:
            items = fields["items"]
            assert isinstance(items, list)
            path = items[0]["proof"]["path"]
            path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]

        _edit_json(root / "package.json", flip_path)

    failures = _failures(_tampered(packaged, tmp_path, change))
    assert failures == [package.PROOF_BROKEN]


def test_a_damaged_time_stamp_is_time_stamp_invalid(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        (anchor,) = (root / "anchors").glob("*.json")
        _edit_json(anchor, lambda a: a.update(reply="MAMCAQA="))

    failures = set(_failures(_tampered(packaged, tmp_path, change)))
    assert package.TIMESTAMP_INVALID in failures
    assert failures <= {package.TIMESTAMP_INVALID} | {
        f"{package.TIMESTAMP_INVALID} (custody entry {n})" for n in range(3)
    }


def test_an_anchor_signed_by_another_instance_key_is_named(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        (anchor,) = (root / "anchors").glob("*.json")
        stranger = crypto.new_signing_key()

        def resign(fields: dict[str, object]) -> None:
            statement = canonical(fields["statement"])
            signature = crypto.sign(stranger, b"buzon-sign-anchor-v1:", statement)
            fields["signature"] = base64.b64encode(signature).decode()

        _edit_json(anchor, resign)

    assert package.ANCHOR_NOT_SIGNED in _failures(_tampered(packaged, tmp_path, change))


def _edit_entries(root: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    path = root / "items" / _file_item(root) / "custody.json"
    fields = json.loads(path.read_bytes())
    change(fields["entries"])
    path.write_bytes(canonical(fields))


def test_an_edited_custody_entry_is_named_at_its_index(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        _edit_entries(root, lambda entries: entries[2]["entry"].update(action="previewed"))  # type: ignore[attr-defined]

    failures = _failures(_tampered(packaged, tmp_path, change))
    assert "custody entry 2 altered" in failures


def test_a_removed_or_reordered_custody_entry_is_named(packaged: Path, tmp_path: Path) -> None:
    def drop_second(entries: list[dict[str, object]]) -> None:
        del entries[1]

    removed = _failures(_tampered(packaged, tmp_path, lambda root: _edit_entries(root, drop_second)))
    assert "custody entry 1 missing or reordered" in removed
    shutil.rmtree(tmp_path / "tampered")
    swapped = _failures(_tampered(packaged, tmp_path, lambda root: _edit_entries(root, lambda e: e.reverse())))
    assert "custody entry 0 missing or reordered" in swapped


def test_a_statement_for_another_key_makes_its_entries_unsigned(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        _edit_json(root / "package.json", lambda p: p.update(editor_keys=[]))

    failures = _failures(_tampered(packaged, tmp_path, change))
    # The message's "opened", and the file's "opened" and "downloaded": ana's key is vouched for no more.
    assert sorted(failures) == ["custody entry 1 unsigned", "custody entry 1 unsigned", "custody entry 2 unsigned"]


def test_a_package_claiming_another_instance_is_refused_whole(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        other = base64.b64encode(crypto.new_signing_key().public).decode()

        def swap(fields: dict[str, object]) -> None:
            fields["instance"] = {**fields["instance"], "public_key": other}  # type: ignore[dict-item]

        _edit_json(root / "package.json", swap)

    with pytest.raises(package.BadPackage):
        _tampered(packaged, tmp_path, change)


def _buzon(instance: Instance, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server_env(instance.settings, tmp_path), "BUZON_RECOVERY_SECRET": instance.recovery_secret}
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_commands_package_and_verify_and_name_a_failure(
    packaged: Path, tmp_path: Path, db: Session, instance: Instance
) -> None:
    ca = tmp_path / "tsa" / "ca.crt"
    designation = db.scalars(select(Source.designation)).one()
    archive = tmp_path / "from-the-command.tar"
    made = _buzon(instance, tmp_path, "evidence", "package", designation, str(archive))
    assert made.returncode == 0, made.stderr
    assert "Wrote 2 item(s)" in made.stderr
    checked = _buzon(instance, tmp_path, "evidence", "verify", str(archive), "--tsa-ca", str(ca))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": verified, time-stamped ") == 2
    opened = _extracted(archive, tmp_path / "opened")
    _flip(opened / "items" / _file_item(opened) / "content")
    broken = _buzon(instance, tmp_path, "evidence", "verify", str(opened), "--tsa-ca", str(ca))
    assert broken.returncode == 1
    assert "failure: content altered" in broken.stdout
    again = _buzon(instance, tmp_path, "evidence", "package", designation, str(archive))
    assert again.returncode != 0  # never over an existing file


def test_the_actas_list_every_hash_and_match_what_the_receipts_say(packaged: Path) -> None:
    receipts = [json.loads((packaged / "items" / n / "receipt.json").read_bytes()) for n in ("0", "1")]
    for language in ("es", "pt_BR", "en"):
        pdf = (packaged / f"acta-{language}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF")
        for receipt in receipts:
            assert receipt["stored_sha256"].encode() in pdf
            assert receipt["sent_sha256"].encode() in pdf
        assert b"contract.pdf" not in pdf  # no file name, no message: what a source wrote stays out
        assert EDITOR.encode() not in pdf  # nor who handled it
        assert (packaged / f"VERIFY-{language}.txt").read_text(encoding="utf-8").count("buzon evidence verify") == 1
    assert b"Acta de recepci" in (packaged / "acta-es.pdf").read_bytes()


def test_a_changed_hash_in_an_acta_is_named_even_with_its_listed_hash_updated(packaged: Path, tmp_path: Path) -> None:
    def change(root: Path) -> None:
        receipt = json.loads((root / "items" / "0" / "receipt.json").read_bytes())
        pdf_path = root / "acta-es.pdf"
        stored = receipt["stored_sha256"]
        forged = pdf_path.read_bytes().replace(
            stored.encode(), ("0" if stored[0] != "0" else "1").encode() + stored[1:].encode()
        )
        pdf_path.write_bytes(forged)

        def relist(fields: dict[str, object]) -> None:
            documents = fields["documents"]
            assert isinstance(documents, dict)
            fields["documents"] = {**documents, "acta-es.pdf": hashlib.sha256(forged).hexdigest()}

        _edit_json(root / "package.json", relist)

    verdicts = _tampered(packaged, tmp_path, change)
    assert _failures(verdicts) == []
    assert _document_failures(verdicts) == [
        "acta-es.pdf does not say what the receipts, anchors and custody entries say"
    ]


def test_a_flipped_byte_of_a_listed_document_is_named(packaged: Path, tmp_path: Path) -> None:
    verdicts = _tampered(packaged, tmp_path, lambda root: _flip(root / "VERIFY-pt_BR.txt", 3))
    assert _document_failures(verdicts) == ["VERIFY-pt_BR.txt altered"]


def test_an_anchor_checks_with_openssl_alone(packaged: Path, tmp_path: Path) -> None:
    (statement,) = (packaged / "anchors").glob("*.statement")
    reply = statement.with_suffix(".tsr")
    checked = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            str(statement),
            "-in",
            str(reply),
            "-CAfile",
            str(tmp_path / "tsa" / "ca.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Verification: OK" in checked.stdout
