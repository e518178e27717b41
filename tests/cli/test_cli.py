"""The buzon command, run as a real subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.db.migrate import MIGRATIONS_DIR, upgrade_database
from app.db.session import make_engine, make_session_factory
from app.services import keys
from app.settings import Settings
from tests.support import SettingsFactory, server_env, uses_sqlite


def _buzon(
    settings: Settings, tmp_path: Path, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = server_env(settings, tmp_path)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "app", *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
    )


def test_init_prints_the_recovery_secret_once_and_refuses_a_second_run(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data")
    first = _buzon(settings, tmp_path, "init")
    assert first.returncode == 0, first.stderr
    match = re.search(r"^Recovery secret: ([A-Z2-7-]+)$", first.stdout, re.MULTILINE)
    assert match is not None
    assert len(match.group(1).replace("-", "")) == 32
    if uses_sqlite(settings):
        assert (settings.data_dir / "buzon.db").exists()
    assert settings.pepper_path.stat().st_mode & 0o077 == 0
    assert settings.data_dir.stat().st_mode & 0o077 == 0
    # The secret is not written anywhere under the data dir.
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert match.group(1).encode() not in path.read_bytes()
            assert match.group(1).replace("-", "").encode() not in path.read_bytes()
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        assert len(keys.open_with_recovery(session=session, recovery_secret=match.group(1))) == 1

    second = _buzon(settings, tmp_path, "init")
    assert second.returncode == 1
    assert "already initialised" in second.stderr
    assert "Recovery secret" not in second.stdout


def test_editor_add_with_recovery_secret_grants_the_newsroom_key(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data")
    secret = re.findall(r"Recovery secret: (\S+)", _buzon(settings, tmp_path, "init").stdout)[0]
    result = _buzon(
        settings,
        tmp_path,
        "editor",
        "add",
        "ana",
        "--admin",
        "--passphrase-stdin",
        stdin="a long enough passphrase\n",
        extra_env={"BUZON_RECOVERY_SECRET": secret},
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^TOTP secret: [A-Z2-7]{32}$", result.stdout, re.MULTILINE)
    assert "otpauth://totp/" in result.stdout
    assert "a long enough passphrase" not in result.stdout + result.stderr

    from sqlalchemy import select

    from app.db.models import Editor

    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        editor = session.scalars(select(Editor)).one()
        assert editor.username == "ana"
        assert editor.is_admin
        assert len(editor.grants) == 1


def test_editor_add_without_secret_waits_for_a_grant(tmp_path: Path, make_settings: SettingsFactory) -> None:
    settings = make_settings(tmp_path / "data")
    _buzon(settings, tmp_path, "init")
    result = _buzon(settings, tmp_path, "editor", "add", "bo", "--passphrase-stdin", stdin="another good passphrase\n")
    assert result.returncode == 0, result.stderr
    assert "an admin must grant" in result.stdout


def test_editor_add_refuses_a_wrong_secret_a_short_passphrase_and_a_duplicate(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data")
    _buzon(settings, tmp_path, "init")
    wrong = _buzon(
        settings,
        tmp_path,
        "editor",
        "add",
        "cy",
        "--passphrase-stdin",
        stdin="a long enough passphrase\n",
        extra_env={"BUZON_RECOVERY_SECRET": "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"},
    )
    assert wrong.returncode == 1
    assert "does not open" in wrong.stderr
    short = _buzon(settings, tmp_path, "editor", "add", "cy", "--passphrase-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "at least 14" in short.stderr
    ok = _buzon(settings, tmp_path, "editor", "add", "cy", "--passphrase-stdin", stdin="a long enough passphrase\n")
    assert ok.returncode == 0
    again = _buzon(settings, tmp_path, "editor", "add", "cy", "--passphrase-stdin", stdin="a long enough passphrase\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_weak_kdf_settings_are_refused_without_the_test_switch(tmp_path: Path, make_settings: SettingsFactory) -> None:
    env_settings = make_settings(
        tmp_path / "data", insecure_fast_kdf=False, editor_kdf_memory_kib=65536, codename_kdf_memory_kib=65536
    )
    result = _buzon(env_settings, tmp_path, "init", extra_env={"BUZON_EDITOR_KDF_MEMORY_KIB": "8"})
    assert result.returncode == 2
    assert "insecure_fast_kdf" in result.stderr


def test_migrate_brings_an_older_database_to_the_current_schema(tmp_path: Path, make_settings: SettingsFactory) -> None:
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(mode=0o700)
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine, "0001")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    result = _buzon(settings, tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head
    assert head != "0001"


def test_serving_loads_neither_alembic_nor_the_maintenance_commands() -> None:
    # Loaded for `buzon serve`'s whole life they cost ~11 MB of its memory (docs/performance.md).
    probe = "import sys, app.cli.main, app.main; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] == "alembic"]
    # The import contracts keep app.main, app.web and app.routers from importing app.ops at all; the CLI
    # imports it lazily inside the maintenance commands, which only running `buzon serve` can check.
    assert not [m for m in loaded if m == "app.ops" or m.startswith("app.ops.") or m == "app.db.migrate"]
