"""Export bundles and key files: round trips, wrong keys, tampering and hostile names."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from app import crypto
from app.cli.decrypt import register
from app.db.models import Editor, Source
from app.db.session import make_engine, make_session_factory
from app.envelopes import write_body
from app.evidence.receipts import Receipt, new_salt, seal_receipt
from app.formats import bundle as bundle_format
from app.formats import filenames
from app.intake.ingest import SealedItem
from app.ops import offline
from app.services import audit, export, keys, replies, submissions
from app.storage import BlobStore
from tests.support import EditorAccount, Instance, LiveServer

PROJECT_DIR = Path(__file__).resolve().parents[2]
BIG = os.urandom(3 * 1024 * 1024 // 2 + 123)
MESSAGE = "The mayor's accounts are in the attached spreadsheet."
FOLLOW_UP = "One more thing: ask about the harbour contract."
REPLY = "Thank you, we are looking into it."
FILES = [("ledger.xlsx", b"secret spreadsheet bytes"), ("big recording.wav", BIG), ("empty.txt", b"")]


@dataclass
class World:
    instance: Instance
    editor: EditorAccount
    editor_id: str
    source_id: str
    key_file: bytes
    bundle: Path


def _sealed(
    store: BlobStore, npk: bytes, kind: str, name: str, content: bytes, received: str, submission_id: str
) -> SealedItem:
    body = write_body(store, content)
    metadata = crypto.EnvelopeMetadata(
        kind=kind,
        name=name,
        type="text/plain; charset=utf-8" if kind == "message" else "application/octet-stream",
        size=body.size,
        sha256=body.sha256,
        received=received,
        sanitised="" if kind == "message" else "not-requested",
        owner=submission_id,
    )
    sealed_metadata = crypto.seal_metadata(body.data_key, metadata)
    receipt = Receipt(
        instance="ab" * 32,
        owner=submission_id,
        envelope=hashlib.sha256(sealed_metadata).hexdigest(),
        kind=kind,
        received=received,
        sent_size=body.size,
        sent_sha256=body.sha256,
        stored_size=body.size,
        stored_sha256=body.sha256,
        cleaning=metadata.sanitised,
        cleaner="",
        detected="",
        salt=new_salt(),
    )
    return SealedItem(
        kind=kind,
        capsule=crypto.make_capsule(npk, body.data_key),
        sealed_metadata=sealed_metadata,
        blob_name=body.blob_name,
        body_size=crypto.body_size(body.size),
        blob=body.blob,
        submission_id=submission_id,
        sealed_receipt=seal_receipt(body.data_key, receipt),
        commitment=receipt.commitment(),
    )


def _record_source(instance: Instance, message: str, files: list[tuple[str, bytes]]) -> str:
    """A source with two submissions and one reply, recorded through the services."""
    settings = instance.settings
    store = BlobStore(settings.store_dir)
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        npk = keys.active_public_key(session)
        # Times of receipt are to the second; fixed ones make the numbering of the output predictable.
        first, second = secrets.token_hex(16), secrets.token_hex(16)
        items = [_sealed(store, npk, "message", "", message.encode(), "2025-01-01T10:00:00Z", first)]
        items += [_sealed(store, npk, "file", name, content, "2025-01-01T10:00:00Z", first) for name, content in files]
        submissions.record_new_source_submission(
            session=session,
            items=items,
            pepper=keys.load_pepper(settings.pepper_path),
            kdf=keys.codename_kdf(session),
        )
        source = session.scalars(select(Source)).one()
        follow_up = [_sealed(store, npk, "message", "", FOLLOW_UP.encode(), "2025-01-02T09:30:00Z", second)]
        submissions.record_follow_up(session=session, items=follow_up, source_id=source.id)
        replies.send_reply(session=session, store=store, source=source, text=REPLY, newsroom_public_key=npk)
        return source.id


def _export(instance: Instance, source_id: str, editor_id: str, path: Path) -> None:
    settings = instance.settings
    with make_session_factory(make_engine(settings.resolved_database_url))() as session, path.open("wb") as sink:
        export.write_bundle(
            session=session, store=BlobStore(settings.store_dir), source_id=source_id, editor_id=editor_id, sink=sink
        )


def _editor_id(instance: Instance, username: str) -> str:
    with make_session_factory(make_engine(instance.settings.resolved_database_url))() as session:
        return session.scalars(select(Editor.id).where(Editor.username == username)).one()


def _key_file(instance: Instance, editor_id: str) -> bytes:
    with make_session_factory(make_engine(instance.settings.resolved_database_url))() as session:
        return export.editor_key_file(session=session, editor_id=editor_id)


@pytest.fixture
def world(instance: Instance, tmp_path: Path) -> World:
    editor = instance.add_editor("ana.lopez.newsroom")
    editor_id = _editor_id(instance, "ana.lopez.newsroom")
    source_id = _record_source(instance, MESSAGE, FILES)
    bundle = tmp_path / "bundle.tar"
    _export(instance, source_id, editor_id, bundle)
    return World(instance, editor, editor_id, source_id, _key_file(instance, editor_id), bundle)


def _expected_outputs() -> dict[str, bytes]:
    return {
        "01-message.txt": MESSAGE.encode(),
        **dict(FILES),
        "05-message.txt": FOLLOW_UP.encode(),
        "06-reply.txt": REPLY.encode(),
    }


def _check_output(out_dir: Path, report: offline.DecryptReport) -> None:
    expected = _expected_outputs()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([*expected, offline.REPORT_NAME])
    for name, content in expected.items():
        assert (out_dir / name).read_bytes() == content
    assert [e.file for e in report.entries] == list(expected)
    for entry in report.entries:
        assert entry.sha256 == hashlib.sha256(expected[entry.file]).hexdigest()
        assert entry.size == len(expected[entry.file])
        assert entry.sha256_matches
    text = (out_dir / offline.REPORT_NAME).read_text(encoding="utf-8")
    assert text == offline.report_text(report)
    assert hashlib.sha256(BIG).hexdigest() in text
    assert text.count("sha256 check: matches") == len(expected)


# --- round trips -------------------------------------------------------------------------


def test_key_file_and_passphrase_open_the_bundle(world: World, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    out = tmp_path / "out"
    report = offline.decrypt_bundle(
        world.bundle,
        out,
        key_file=world.key_file,
        passphrase=world.editor.passphrase,
        progress=lambda name, done, total: calls.append((name, done, total)),
    )
    _check_output(out, report)
    big = [(done, total) for name, done, total in calls if name == "big recording.wav"]
    assert len(big) == -(-len(BIG) // crypto.CHUNK_SIZE)
    assert big[-1] == (len(BIG), len(BIG))
    assert [done for done, _ in big] == sorted(done for done, _ in big)


def test_recovery_secret_opens_the_bundle(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    secret = world.instance.recovery_secret.lower().replace("-", " ")
    report = offline.decrypt_bundle(world.bundle, out, recovery_secret=secret)
    _check_output(out, report)
    assert report.designation


def test_an_existing_empty_directory_is_used_and_a_full_one_refused(world: World, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    offline.decrypt_bundle(world.bundle, empty, recovery_secret=world.instance.recovery_secret)
    assert (empty / "ledger.xlsx").read_bytes() == FILES[0][1]
    with pytest.raises(bundle_format.BundleError, match="not an empty directory"):
        offline.decrypt_bundle(world.bundle, empty, recovery_secret=world.instance.recovery_secret)
    assert (empty / "ledger.xlsx").read_bytes() == FILES[0][1]


def test_the_bundle_is_a_plain_tar_with_no_plaintext(world: World) -> None:
    raw = world.bundle.read_bytes()
    for secret in [MESSAGE, FOLLOW_UP, REPLY, "ledger", "recording", "secret spreadsheet", world.editor.username]:
        assert secret.encode() not in raw
    assert BIG[1000:1064] not in raw
    with tarfile.open(world.bundle) as tar:
        names = tar.getnames()
        assert names == ["manifest.json", *(bundle_format.member_name(i) for i in range(6))]
        assert all(m.mtime == 0 and m.uid == 0 and m.isreg() for m in tar.getmembers())
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest_raw = manifest_file.read()
    manifest = bundle_format.parse_bundle_manifest(manifest_raw)
    assert bundle_format.bundle_manifest_json(manifest) == manifest_raw
    # Submissions of one day have no order on the server; the output is numbered by time of receipt.
    assert sorted(e.kind for e in manifest.entries) == ["file", "file", "file", "message", "message", "reply"]
    per_submission = Counter(e.submission for e in manifest.entries if e.submission is not None)
    assert set(per_submission) == {0, 1}
    assert sorted(per_submission.values()) == [1, 4]
    assert manifest.entries[-1].kind == "reply"


def test_plan_size_and_chunks_match_what_is_written(world: World) -> None:
    settings = world.instance.settings
    store = BlobStore(settings.store_dir)
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        plan = export.plan_bundle(session=session, store=store, source_id=world.source_id, editor_id=world.editor_id)
    chunks = list(export.bundle_chunks(store, plan))
    assert max(len(c) for c in chunks) <= 64 * 1024
    assert b"".join(chunks) == world.bundle.read_bytes()
    assert plan.size == world.bundle.stat().st_size
    assert plan.size % tarfile.RECORDSIZE == 0
    assert plan.filename == f"buzon-{plan.designation.replace(' ', '-')}.tar"


def test_exports_are_audited(world: World) -> None:
    with make_session_factory(make_engine(world.instance.settings.resolved_database_url))() as session:
        actions = [(e.actor, e.action) for e in audit.recent(session)]
        designation = session.scalars(select(Source.designation)).one()
        targets = [e.target for e in audit.recent(session) if e.action == "source export"]
    assert ("ana.lopez.newsroom", "source export") in actions
    assert ("ana.lopez.newsroom", "key file export") in actions
    assert targets == [designation]


def test_export_needs_a_grant_and_an_existing_source(world: World, tmp_path: Path) -> None:
    world.instance.add_editor("bo", grant=False)
    with pytest.raises(export.KeyNotGranted):
        _export(world.instance, world.source_id, _editor_id(world.instance, "bo"), tmp_path / "b.tar")
    with pytest.raises(export.ExportNotFound):
        _export(world.instance, "0" * 32, world.editor_id, tmp_path / "c.tar")


# --- wrong keys ---------------------------------------------------------------------------


def test_a_wrong_passphrase_is_refused_and_writes_nothing(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(offline.WrongKey, match="Wrong passphrase"):
        offline.decrypt_bundle(world.bundle, out, key_file=world.key_file, passphrase="not the passphrase at all")
    with pytest.raises(offline.WrongKey):
        offline.decrypt_bundle(world.bundle, out, key_file=world.key_file, passphrase="x" * 2000)
    assert not out.exists()


@pytest.mark.parametrize("secret", ["not a secret", crypto.generate_recovery_secret()])
def test_a_wrong_recovery_secret_is_refused_and_writes_nothing(world: World, tmp_path: Path, secret: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(offline.WrongKey):
        offline.decrypt_bundle(world.bundle, out, recovery_secret=secret)
    assert not out.exists()


def test_another_editors_key_file_is_refused(world: World, tmp_path: Path) -> None:
    other = world.instance.add_editor("cy")
    other_key = _key_file(world.instance, _editor_id(world.instance, "cy"))
    with pytest.raises(offline.WrongKey, match="another editor"):
        offline.decrypt_bundle(world.bundle, tmp_path / "out", key_file=other_key, passphrase=other.passphrase)
    assert not (tmp_path / "out").exists()


def test_key_files_round_trip_and_malformed_ones_are_refused(world: World) -> None:
    parsed = bundle_format.read_key_file(world.key_file)
    assert parsed.username == "ana.lopez.newsroom"
    assert "wrapped" not in repr(parsed)
    assert crypto.unwrap_secret_key(parsed.wrapped_secret_key, world.editor.passphrase).public == parsed.public_key
    document = json.loads(world.key_file)
    variants: list[dict[str, object]] = [
        {**document, "format": "buzon-bundle"},
        {**document, "version": 2},
        {**document, "version": True},
        {**document, "extra": 1},
        {**document, "wrapped_secret_key": document["wrapped_secret_key"][:-4]},
        {**document, "public_key": document["public_key"].replace("=", "") + "=="},
        {k: v for k, v in document.items() if k != "username"},
    ]
    for variant in variants:
        with pytest.raises(bundle_format.BundleError):
            bundle_format.read_key_file(json.dumps(variant).encode())
    for raw in [b"", b"{", world.key_file[:-20], b" " * 5000, b'{"format": "buzon-editor-key", "format": 1}']:
        with pytest.raises(bundle_format.BundleError):
            bundle_format.read_key_file(raw)


# --- tampering -----------------------------------------------------------------------------


def _members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(bundle) as tar:
        out = []
        for member in tar.getmembers():
            data = tar.extractfile(member)
            out.append((member, data.read() if data else b""))
        return out


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


Rewrite = Callable[[list[tuple[tarfile.TarInfo, bytes]]], list[tuple[tarfile.TarInfo, bytes]]]


def _rewritten(world: World, tmp_path: Path, change: Rewrite) -> Path:
    path = tmp_path / "rewritten.tar"
    _write_tar(path, change(_members(world.bundle)))
    return path


def _renamed(members: list[tuple[tarfile.TarInfo, bytes]], old: str, new: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    for info, _ in members:
        if info.name == old:
            info.name = new
    return members


def _with_manifest(
    members: list[tuple[tarfile.TarInfo, bytes]], edit: Callable[[dict[str, object]], None]
) -> list[tuple[tarfile.TarInfo, bytes]]:
    info, raw = members[0]
    document = json.loads(raw)
    edit(document)
    new_raw = json.dumps(document).encode()
    info.size = len(new_raw)
    return [(info, new_raw), *members[1:]]


def _entry(document: dict[str, object], index: int) -> dict[str, object]:
    entries = document["entries"]
    assert isinstance(entries, list)
    entry: dict[str, object] = entries[index]
    return entry


def _assert_refused(world: World, bundle: Path, out: Path, match: str) -> None:
    with pytest.raises(bundle_format.BundleError, match=match):
        offline.decrypt_bundle(bundle, out, recovery_secret=world.instance.recovery_secret)
    assert not out.exists()


def _largest_body(bundle: Path) -> tarfile.TarInfo:
    with tarfile.open(bundle) as tar:
        return max(tar.getmembers()[1:], key=lambda m: m.size)


@pytest.mark.parametrize("which", ["largest", "last"])
def test_a_flipped_body_byte_is_detected_and_no_file_is_left(world: World, tmp_path: Path, which: str) -> None:
    with tarfile.open(world.bundle) as tar:
        info = _largest_body(world.bundle) if which == "largest" else tar.getmembers()[-1]
        offset = info.offset_data + info.size // 2
    raw = bytearray(world.bundle.read_bytes())
    raw[offset] ^= 0x01
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(raw))
    _assert_refused(world, tampered, tmp_path / "out", "fails to authenticate")


def test_a_truncated_bundle_is_refused(world: World, tmp_path: Path) -> None:
    cut = _largest_body(world.bundle).offset_data + 70_000
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(world.bundle.read_bytes()[:cut])
    _assert_refused(world, truncated, tmp_path / "out", "truncated")


def test_a_member_named_dot_dot_is_refused(world: World, tmp_path: Path) -> None:
    escape = _rewritten(world, tmp_path, lambda m: _renamed(m, "bodies/1", "../evil"))
    _assert_refused(world, escape, tmp_path / "out", "unexpected member '../evil'")
    assert not (tmp_path / "evil").exists()


def test_a_manifest_naming_dot_dot_is_refused(world: World, tmp_path: Path) -> None:
    def edit(document: dict[str, object]) -> None:
        _entry(document, 1)["member"] = "../evil"

    escape = _rewritten(world, tmp_path, lambda m: _renamed(_with_manifest(m, edit), "bodies/1", "../evil"))
    _assert_refused(world, escape, tmp_path / "out", "unexpected tar member")
    assert not (tmp_path / "evil").exists()


def test_links_and_extra_members_are_refused(world: World, tmp_path: Path) -> None:
    def to_symlink(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
        link = tarfile.TarInfo("bodies/0")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        return [members[0], (link, b""), *members[2:]]

    _assert_refused(world, _rewritten(world, tmp_path, to_symlink), tmp_path / "out", "not a regular file")

    def add_extra(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
        extra = tarfile.TarInfo("../evil")
        extra.size = 4
        return [*members, (extra, b"evil")]

    _assert_refused(world, _rewritten(world, tmp_path, add_extra), tmp_path / "out", "more members")
    assert not (tmp_path / "evil").exists()


def test_sizes_that_disagree_with_the_manifest_are_refused(world: World, tmp_path: Path) -> None:
    def shorten(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
        info, data = members[3]
        info.size = len(data) - crypto.BODY_CHUNK_SIZE
        return [*members[:3], (info, data[: info.size]), *members[4:]]

    _assert_refused(world, _rewritten(world, tmp_path, shorten), tmp_path / "out", "does not have the size")

    def lie_in_manifest(document: dict[str, object]) -> None:
        entry = _entry(document, 2)
        assert isinstance(entry["body_size"], int)
        entry["body_size"] += crypto.BODY_CHUNK_SIZE

    lied = _rewritten(world, tmp_path, lambda m: _with_manifest(m, lie_in_manifest))
    _assert_refused(world, lied, tmp_path / "out", "does not match its manifest")


def test_a_swapped_capsule_or_kind_is_refused(world: World, tmp_path: Path) -> None:
    def swap_capsules(document: dict[str, object]) -> None:
        first, second = _entry(document, 1), _entry(document, 2)
        first["capsule"], second["capsule"] = second["capsule"], first["capsule"]

    swapped = _rewritten(world, tmp_path, lambda m: _with_manifest(m, swap_capsules))
    _assert_refused(world, swapped, tmp_path / "out", "cannot be opened")

    def relabel(document: dict[str, object]) -> None:
        entries = document["entries"]
        assert isinstance(entries, list)
        next(e for e in entries if e["kind"] == "file")["kind"] = "message"

    _assert_refused(
        world, _rewritten(world, tmp_path, lambda m: _with_manifest(m, relabel)), tmp_path / "out", "manifest"
    )


def test_an_item_moved_to_another_submission_of_the_bundle_is_refused(world: World, tmp_path: Path) -> None:
    def move_follow_up(document: dict[str, object]) -> None:
        entries = document["entries"]
        assert isinstance(entries, list)
        follow_up = next(e for e in entries if e["submission"] == 1)
        follow_up["submission"], follow_up["position"] = 0, max(e["position"] for e in entries) + 1

    moved = _rewritten(world, tmp_path, lambda m: _with_manifest(m, move_follow_up))
    _assert_refused(world, moved, tmp_path / "out", "other than their own")


def test_not_a_bundle_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(bundle_format.BundleError):
        offline.decrypt_bundle(junk, tmp_path / "out", recovery_secret=crypto.generate_recovery_secret())
    assert not (tmp_path / "out").exists()


# --- hostile file names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a\x00b", "ab"),
        (".hidden", "hidden"),
        ("..", "unnamed"),
        ("", "unnamed"),
        ("C:\\Windows\\win.ini", "C__Windows_win.ini"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("CON.txt", "_CON.txt"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("trailing. . ", "trailing"),
        ("é" * 200 + ".pdf", "é" * 98 + ".pdf"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert filenames.safe_filename(name) == safe


def test_hostile_names_are_written_inside_the_output_directory(instance: Instance, tmp_path: Path) -> None:
    instance.add_editor("dee")
    names = ["..", ".hidden", "report.txt", "01-message.txt", "same.txt", "SAME.txt", "same.txt", "a:b?.txt", "x" * 255]
    source_id = _record_source(instance, MESSAGE, [(name, name.encode()) for name in names])
    bundle = tmp_path / "hostile.tar"
    _export(instance, source_id, _editor_id(instance, "dee"), bundle)
    out = tmp_path / "out"
    report = offline.decrypt_bundle(bundle, out, recovery_secret=instance.recovery_secret)
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert all(p.resolve().parent == out.resolve() for p in out.iterdir())
    assert not any(name.startswith(".") for name in written)
    assert len({name.casefold() for name in written}) == len(written)
    assert written["01-message.txt"] == MESSAGE.encode()
    assert written["report.txt"].startswith("Buzón bundle".encode())
    files = [e for e in report.entries if e.kind == "file"]
    assert [e.name for e in files] == names
    for entry in files:
        assert written[entry.file] == entry.name.encode()
    assert [e.file for e in files[:8]] == [
        "unnamed",
        "hidden",
        "report (2).txt",
        "01-message (2).txt",
        "same.txt",
        "SAME (2).txt",
        "same (3).txt",
        "a_b_.txt",
    ]
    assert len(files[8].file.encode()) == filenames.MAX_OUTPUT_NAME_BYTES


# --- the command ------------------------------------------------------------------------------


def _cli() -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def main() -> None:
        """A stand-in for app.cli.main's ``cli``."""

    register(cli)
    return cli


def test_decrypt_command_with_key_file(world: World, tmp_path: Path) -> None:
    key_path = tmp_path / "key.json"
    key_path.write_bytes(world.key_file)
    out = tmp_path / "out"
    args = ["decrypt", str(world.bundle), "--out", str(out), "--key-file", str(key_path), "--secret-stdin"]
    result = CliRunner().invoke(_cli(), args, input=f"{world.editor.passphrase}\n")
    assert result.exit_code == 0, result.output
    assert "big recording.wav" in result.stdout
    assert hashlib.sha256(BIG).hexdigest() in result.stdout
    assert "Decrypted 6 item(s)" in result.stdout
    assert world.editor.passphrase not in result.output
    assert (out / "big recording.wav").read_bytes() == BIG

    wrong = CliRunner().invoke(_cli(), [*args[:3], str(tmp_path / "o2"), *args[4:]], input="wrong passphrase\n")
    assert wrong.exit_code == 1
    assert "Wrong passphrase" in wrong.stderr
    assert "wrong passphrase\n" not in wrong.output
    assert not (tmp_path / "o2").exists()


def test_decrypt_command_needs_exactly_one_way_in(world: World, tmp_path: Path) -> None:
    neither = CliRunner().invoke(_cli(), ["decrypt", str(world.bundle)])
    assert neither.exit_code == 1
    assert "--key-file" in neither.stderr
    both = CliRunner().invoke(_cli(), ["decrypt", str(world.bundle), "--recovery", "--key-file", str(world.bundle)])
    assert both.exit_code == 1


def test_decrypt_command_runs_offline_with_the_recovery_secret(world: World, tmp_path: Path) -> None:
    """A real process with no BUZON_ settings and a working directory far from the data dir."""
    workdir = tmp_path / "offline"
    workdir.mkdir()
    (workdir / "bundle.tar").write_bytes(world.bundle.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUZON_")}
    env["PYTHONPATH"] = str(PROJECT_DIR)
    script = (
        "import typer\nfrom app.cli.decrypt import register\n"
        "cli = typer.Typer()\ncli.callback()(lambda: None)\nregister(cli)\ncli()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "decrypt", "bundle.tar", "--recovery", "--secret-stdin"],
        input=f"{world.instance.recovery_secret}\n",
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "06-reply.txt" in result.stdout
    assert world.instance.recovery_secret not in result.stdout + result.stderr
    assert (workdir / "bundle" / "big recording.wav").read_bytes() == BIG
    assert sorted(p.name for p in workdir.iterdir()) == ["bundle", "bundle.tar"]


# --- the routes, once the export router is part of the editor app --------------------------------


def test_export_and_key_file_routes(
    world: World, live_server: LiveServer, client: httpx.Client, tmp_path: Path
) -> None:
    anonymous = client.get(f"{live_server.editor_url}/account", follow_redirects=False)
    assert anonymous.status_code == 303
    live_server.login(client, world.editor)
    # A session alone does not hand out the key file: the passphrase is asked again.
    url = live_server.editor_url
    wrong = live_server.post_form(client, url, "/account", "/account/key-file", {"passphrase": "not the passphrase"})
    assert wrong.status_code == 401
    assert b"wrapped" not in wrong.content
    assert world.key_file not in wrong.content
    data = {"passphrase": world.editor.passphrase}
    key_response = live_server.post_form(client, url, "/account", "/account/key-file", data)
    assert key_response.status_code == 200
    assert (
        key_response.headers["content-disposition"] == "attachment; filename*=UTF-8''buzon-key-ana.lopez.newsroom.json"
    )
    assert key_response.content == world.key_file
    bundle = tmp_path / "download.tar"
    with client.stream("GET", f"{live_server.editor_url}/sources/{world.source_id}/export") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-tar"
        assert response.headers["content-disposition"].startswith("attachment; filename*=UTF-8''buzon-")
        with bundle.open("wb") as sink:
            for chunk in response.iter_bytes():
                sink.write(chunk)
    assert int(response.headers["content-length"]) == bundle.stat().st_size
    out = tmp_path / "out"
    report = offline.decrypt_bundle(bundle, out, key_file=key_response.content, passphrase=world.editor.passphrase)
    _check_output(out, report)
    assert client.get(f"{live_server.editor_url}/sources/{'0' * 32}/export").status_code == 404
