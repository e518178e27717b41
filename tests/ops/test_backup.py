"""buzon backup and buzon restore, run as real subprocesses against real servers."""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, inspect, select

from app.db.migrate import upgrade_database
from app.db.session import make_engine
from app.formats.backup_archive import ArchiveError, blob_member, table_member
from app.ops import backup, restore
from app.settings import Settings
from tests.support import (
    EditorAccount,
    Instance,
    LiveServer,
    ServerFactory,
    SettingsFactory,
    initialise,
    migration_revisions,
    server_env,
)
from tests.support.desk import (
    desk_post,
    encodings,
    follow_up,
    inbox_ids,
    new_source,
    source_login,
    source_page,
)

Fresh = Callable[[str], Settings]


@pytest.fixture
def fresh(tmp_path: Path, make_settings: SettingsFactory) -> Fresh:
    """New, empty instances' settings by name: SQLite in the data dir, or with
    ``pytest --database=postgresql`` a fresh PostgreSQL database (tests/conftest.py)."""
    return lambda name: make_settings(tmp_path / name)


def _on_postgresql(settings: Settings) -> bool:
    return not settings.resolved_database_url.startswith("sqlite")


def _table_names(settings: Settings) -> list[str]:
    engine = make_engine(settings.resolved_database_url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _buzon(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=server_env(settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class World:
    """What the old instance held, and how to recognise it."""

    editor: EditorAccount
    a_id: str
    a_codename: str
    b_id: str
    markers: dict[str, str]
    text_file: bytes
    big_file: bytes


def _populate(server: LiveServer, client: httpx.Client) -> World:
    tag = secrets.token_hex(6)
    markers = {
        name: f"{name.upper()}MARKER{tag}"
        for name in ("message", "follow", "second", "filename", "content", "reply", "tag", "note", "replyb")
    }
    text_file = (markers["content"] + "\n").encode() * 2000
    big_file = secrets.token_bytes(1536 * 1024)  # over 1 MiB: many chunks
    files = [(f"{markers['filename']}.txt", text_file), ("big.bin", big_file)]
    a_id, a_codename = new_source(server, f"first {markers['message']}", files)
    b_id, b_codename = new_source(server, f"second {markers['second']}")
    follow_up(server, a_codename, f"again {markers['follow']}")
    editor = server.instance.add_editor("ana", admin=True)
    server.login(client, editor)
    for source_id, action, data in (
        (a_id, "reply", {"reply": markers["reply"]}),
        (b_id, "reply", {"reply": markers["replyb"]}),
        (a_id, "tags", {"name": markers["tag"]}),
        (a_id, "notes", {"text": markers["note"]}),
    ):
        assert desk_post(server, client, source_id, f"/sources/{source_id}/{action}", data).status_code == 303
    # B reads and deletes the reply: its capsule is erased (an empty value must survive too).
    with httpx.Client(timeout=60) as source:
        source_login(server, source, b_codename)
        home = source.get(f"{server.source_url}/home").text
        (delete_path,) = re.findall(r'action="(/replies/[0-9a-f]+/delete)"', home)
        assert server.post_form(source, server.source_url, "/home", delete_path, {}).status_code == 303
    return World(editor, a_id, a_codename, b_id, markers, text_file, big_file)


def _all_rows(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            metadata = MetaData()
            metadata.reflect(bind=connection)
            return {
                name: sorted(tuple(row) for row in connection.execute(select(table)))
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def _blob_names(settings: Settings) -> list[str]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            metadata = MetaData()
            metadata.reflect(bind=connection, only=["items"])
            return list(connection.scalars(select(metadata.tables["items"].c.blob_name)))
    finally:
        engine.dispose()


def _downloads(page: str) -> dict[str, str]:
    return {name: link for link, name in re.findall(r'href="(/items/[0-9a-f]+/download)">([^<]+)<', page)}


def test_every_tip_is_readable_after_a_restore_into_a_fresh_data_dir(
    tmp_path: Path, live_server: LiveServer, client: httpx.Client, server_factory: ServerFactory, fresh: Fresh
) -> None:
    world = _populate(live_server, client)
    before = _all_rows(live_server.instance.settings)
    archive = tmp_path / "backup.tar"
    # Taken while the server runs.
    made = _buzon(live_server.instance.settings, tmp_path, "backup", str(archive))
    assert made.returncode == 0, made.stderr
    assert re.search(r"2 source\(s\), 5 item\(s\), 2 reply\(ies\), 1 editor\(s\)", made.stdout), made.stdout
    assert archive.stat().st_mode & 0o077 == 0

    target = fresh("restored")
    done = _buzon(target, tmp_path, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert _all_rows(target) == before
    assert target.data_dir.stat().st_mode & 0o777 == 0o700
    assert target.pepper_path.stat().st_mode & 0o777 == 0o600
    assert target.pepper_path.read_bytes() == live_server.instance.settings.pepper_path.read_bytes()
    assert not target.csrf_key_path.exists()

    _check_restored(server_factory(Instance(target, live_server.instance.recovery_secret)), world)


def _check_restored(restored: LiveServer, world: World) -> None:
    """Every tip reads as before, sources log back in, and new tips, notes and audit entries work."""
    with httpx.Client(timeout=60) as desk:
        restored.login(desk, world.editor)  # the same passphrase and TOTP secret
        assert set(inbox_ids(restored, desk)) == {world.a_id, world.b_id}
        page_a = source_page(restored, desk, world.a_id)
        for name in ("message", "follow", "filename", "reply", "tag", "note"):
            assert world.markers[name] in page_a, name
        links = _downloads(page_a)
        assert desk.get(f"{restored.editor_url}{links['big.bin']}").content == world.big_file
        assert desk.get(f"{restored.editor_url}{links[world.markers['filename'] + '.txt']}").content == world.text_file
        page_b = source_page(restored, desk, world.b_id)
        assert world.markers["second"] in page_b
        assert world.markers["replyb"] in page_b  # the newsroom's copy of a reply the source deleted

        # The source logs back in with the codename, reads the reply and sends more.
        with httpx.Client(timeout=60) as source:
            source_login(restored, source, world.a_codename)
            assert world.markers["reply"] in source.get(f"{restored.source_url}/home").text
        follow_up(restored, world.a_codename, "after the restore")
        new_id, _ = new_source(restored, "a new source after the restore")
        assert "after the restore" in source_page(restored, desk, world.a_id)
        assert "a new source after the restore" in source_page(restored, desk, new_id)
        # Serial ids (notes, audit entries) carry on past the restored rows.
        note = {"text": "a note after the restore"}
        assert desk_post(restored, desk, world.a_id, f"/sources/{world.a_id}/notes", note).status_code == 303


def test_an_instance_moves_between_sqlite_and_postgresql(
    tmp_path: Path, client: httpx.Client, server_factory: ServerFactory, fresh: Fresh, make_settings: SettingsFactory
) -> None:
    target = fresh("postgresql")
    if not _on_postgresql(target):
        pytest.skip("needs a PostgreSQL server: pytest --database=postgresql")
    sqlite_dir = tmp_path / "sqlite"
    instance = initialise(make_settings(sqlite_dir, database_url=f"sqlite:///{sqlite_dir / 'buzon.db'}"))
    old = server_factory(instance)
    world = _populate(old, client)
    archive = tmp_path / "from-sqlite.tar"
    assert _buzon(instance.settings, tmp_path, "backup", str(archive)).returncode == 0
    done = _buzon(target, tmp_path, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert _all_rows(target) == _all_rows(instance.settings)

    # And back: PostgreSQL to SQLite gives the same rows again.
    back_dir = tmp_path / "back"
    back = make_settings(back_dir, database_url=f"sqlite:///{back_dir / 'buzon.db'}")
    assert _buzon(target, tmp_path, "backup", str(tmp_path / "from-pg.tar")).returncode == 0
    assert _buzon(back, tmp_path, "restore", str(tmp_path / "from-pg.tar")).returncode == 0
    assert _all_rows(back) == _all_rows(instance.settings)
    _check_restored(server_factory(Instance(target, instance.recovery_secret)), world)


def test_the_archive_holds_ciphertext_only_and_no_csrf_key(
    tmp_path: Path, live_server: LiveServer, client: httpx.Client
) -> None:
    world = _populate(live_server, client)
    settings = live_server.instance.settings
    archive = tmp_path / "backup.tar"
    assert _buzon(settings, tmp_path, "backup", "--quiet", str(archive)).returncode == 0

    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = {m.name for m in members}
    assert "pepper" in names
    assert "manifest.json" in names
    assert not any("csrf" in name for name in names)
    # No times: a body's mtime would date its tip.
    assert {m.mtime for m in members} == {0}
    assert all(m.isfile() and m.mode == 0o600 for m in members)

    raw = archive.read_bytes()
    secrets_ = [
        world.a_codename,
        world.editor.passphrase,
        world.editor.totp_secret,
        live_server.instance.recovery_secret,
        live_server.instance.recovery_secret.replace("-", ""),
    ]
    needles = [n for text in [*world.markers.values(), *secrets_] for n in encodings(text)]
    assert [n for n in needles if n in raw] == []
    assert world.big_file[1000:1064] not in raw
    assert settings.csrf_key_path.read_bytes() not in raw


def _small_archive(tmp_path: Path, server: LiveServer) -> Path:
    new_source(server, "a tip", [("file.bin", secrets.token_bytes(200_000))])
    archive = tmp_path / "small.tar"
    made = _buzon(server.instance.settings, tmp_path, "backup", str(archive))
    assert made.returncode == 0, made.stderr
    return archive


def test_restore_refuses_a_non_empty_target_and_changes_nothing(
    tmp_path: Path, live_server: LiveServer, fresh: Fresh
) -> None:
    archive = _small_archive(tmp_path, live_server)
    target = fresh("busy")
    target.data_dir.mkdir()
    (target.data_dir / "notes.txt").write_text("mine")
    refused = _buzon(target, tmp_path, "restore", str(archive))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert "Nothing was changed" in refused.stderr
    assert [p.name for p in target.data_dir.iterdir()] == ["notes.txt"]

    # An initialised instance is refused too, and stays as it was.
    initialised = initialise(fresh("initialised"))
    rows = _all_rows(initialised.settings)
    again = _buzon(initialised.settings, tmp_path, "restore", str(archive))
    assert again.returncode == 1
    assert "Nothing was changed" in again.stderr
    assert _all_rows(initialised.settings) == rows


def _rewrite(archive: Path, out: Path, change: dict[str, bytes]) -> None:
    """Copy ``archive`` to ``out`` with some members' contents replaced."""
    with tarfile.open(archive) as source, tarfile.open(out, "w") as sink:
        for member in source.getmembers():
            stream = source.extractfile(member)
            assert stream is not None
            data = change.get(member.name, stream.read())
            member.size = len(data)
            sink.addfile(member, io.BytesIO(data))


def _flip_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def _member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        stream = tar.extractfile(name)
        assert stream is not None
        return stream.read()


def _manifest(archive: Path) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(_member(archive, "manifest.json"))
    return manifest


@pytest.mark.parametrize("target_exists", [False, True])
def test_a_tampered_body_is_refused_and_leaves_no_instance(
    tmp_path: Path, live_server: LiveServer, target_exists: bool, fresh: Fresh
) -> None:
    archive = _small_archive(tmp_path, live_server)
    blobs = _manifest(archive)["blobs"]
    assert isinstance(blobs, dict)
    name = max(blobs, key=lambda n: blobs[n]["size"])
    tampered = tmp_path / "tampered.tar"
    member = blob_member(name)
    _rewrite(archive, tampered, {member: _flip_byte(_member(archive, member), 100_000)})

    target = fresh("target")
    if target_exists:
        target.data_dir.mkdir(mode=0o700)
    refused = _buzon(target, tmp_path, "restore", str(tampered))
    assert refused.returncode == 1
    assert f"The body {name} does not match its SHA-256" in refused.stderr
    assert "Nothing was restored" in refused.stderr
    if target_exists:
        assert list(target.data_dir.iterdir()) == []
    else:
        assert not target.data_dir.exists()
    if _on_postgresql(target):
        assert _table_names(target) == []


def test_a_tampered_row_or_manifest_is_refused(tmp_path: Path, live_server: LiveServer, fresh: Fresh) -> None:
    archive = _small_archive(tmp_path, live_server)
    items = table_member("items")
    cases = {
        "row": ({items: _flip_byte(_member(archive, items), 200)}, "The dump of items"),
        "newer schema": (
            {"manifest.json": json.dumps({**_manifest(archive), "revision": "9999"}).encode()},
            "newer than this Buzón knows",
        ),
        "not a backup": ({"manifest.json": b"{}"}, "not a Buzón backup"),
    }
    for case, (change, message) in cases.items():
        tampered = tmp_path / f"{case}.tar"
        _rewrite(archive, tampered, change)
        target = fresh(f"target-{case}")
        refused = _buzon(target, tmp_path, "restore", str(tampered))
        assert refused.returncode == 1, case
        assert message in refused.stderr, (case, refused.stderr)
        assert not target.data_dir.exists(), case
        if _on_postgresql(target):
            assert _table_names(target) == [], case


def test_backup_refuses_to_overwrite_and_needs_an_instance(
    tmp_path: Path, live_server: LiveServer, fresh: Fresh
) -> None:
    archive = tmp_path / "exists.tar"
    archive.write_bytes(b"keep")
    refused = _buzon(live_server.instance.settings, tmp_path, "backup", str(archive))
    assert refused.returncode == 1
    assert "already exists" in refused.stderr
    assert archive.read_bytes() == b"keep"
    nothing = _buzon(fresh("nothing"), tmp_path, "backup", str(tmp_path / "new.tar"))
    assert nothing.returncode == 1
    assert "initialised instance" in nothing.stderr
    assert not (tmp_path / "new.tar").exists()
    assert not (tmp_path / "new.tar.partial").exists()


def test_tips_arriving_or_deleted_during_a_backup_leave_a_consistent_archive(
    tmp_path: Path, live_server: LiveServer, fresh: Fresh
) -> None:
    """Rows come from one snapshot; bodies deleted after it take their rows out of the archive."""
    settings = live_server.instance.settings
    new_source(live_server, "kept")
    new_source(live_server, "deleted during the backup")
    doomed = min(_blob_names(settings))
    engine = make_engine(settings.resolved_database_url)
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if not calls:
            # After the snapshot, before any body is copied.
            (settings.store_dir / doomed[:2] / doomed).unlink()
            new_source(live_server, "arrived during the backup")
        calls.append((done, total))

    try:
        report = backup.write_backup(
            engine=engine,
            store_root=settings.store_dir,
            pepper_path=settings.pepper_path,
            out=tmp_path / "during.tar",
            progress=progress,
        )
    finally:
        engine.dispose()
    assert report.manifest.skipped_blobs == 1
    assert report.rows["items"] == 1
    assert report.rows["sources"] == 2
    assert calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    target = fresh("restored")
    restore.restore_backup(archive=tmp_path / "during.tar", settings=target)
    (kept,) = _blob_names(target)
    assert kept != doomed
    assert (target.store_dir / kept[:2] / kept).exists()


def test_an_archive_of_an_older_schema_is_restored_then_upgraded(tmp_path: Path, fresh: Fresh) -> None:
    old = fresh("old")
    old.data_dir.mkdir(mode=0o700)
    old.pepper_path.write_bytes(secrets.token_bytes(16))
    engine = make_engine(old.resolved_database_url)
    upgrade_database(engine, "0002")
    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.begin() as connection:
        connection.execute(
            metadata.tables["instance"].insert(),
            {"id": 1, "codename_kdf_time_cost": 1, "codename_kdf_memory_kib": 8, "codename_kdf_parallelism": 1},
        )
    try:
        report = backup.write_backup(
            engine=engine, store_root=old.store_dir, pepper_path=old.pepper_path, out=tmp_path / "old.tar"
        )
    finally:
        engine.dispose()
    assert report.manifest.revision == "0002"

    target = fresh("new")
    restore.restore_backup(archive=tmp_path / "old.tar", settings=target)
    rows = _all_rows(target)
    assert rows["alembic_version"] == [(migration_revisions()[-1],)]
    assert len(rows["instance"]) == 1
    assert "audit_log" in rows  # a table of a later revision


def test_parse_manifest_round_trips_and_refuses_junk() -> None:
    from app.formats.backup_archive import (
        BackupManifest,
        FileDigest,
        TableDump,
        backup_manifest_json,
        parse_backup_manifest,
    )

    digest = FileDigest(16, hashlib.sha256(b"x").hexdigest())
    manifest = BackupManifest(
        revision="0003",
        buzon_version="0.1.0",
        created_on="2025-01-01",
        database="sqlite",
        pepper=digest,
        tables=[TableDump("items", [("id", "str"), ("body_size", "int")], 3, digest)],
        blobs={"ab" * 16: digest},
    )
    assert parse_backup_manifest(backup_manifest_json(manifest)) == manifest
    for junk in (b"[]", b"not json", backup_manifest_json(manifest).replace(b'"str"', b'"pickle"')):
        with pytest.raises(ArchiveError):
            parse_backup_manifest(junk)
    bad_name = json.loads(backup_manifest_json(manifest))
    bad_name["blobs"] = {"../../etc/passwd": bad_name["blobs"]["ab" * 16]}
    with pytest.raises(ArchiveError):
        parse_backup_manifest(json.dumps(bad_name).encode())
