"""buzon doctor on real temporary instances: each misconfiguration gives its FAIL or WARN."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.db.migrate import upgrade_database
from app.db.models import EvidenceLeaf
from app.db.session import make_engine
from app.media.sandbox import Sandbox, SandboxLimits
from app.ops import doctor
from app.settings import Settings
from app.storage import BlobStore
from tests.support import Instance, SettingsFactory, free_port, initialise, server_env
from tests.support.inprocess import SourceFactory
from tests.support.tsa import make_authority_files

# The lowest Argon2id costs Settings accepts without insecure_fast_kdf.
REAL_KDF: dict[str, object] = {
    "insecure_fast_kdf": False,
    "editor_kdf_memory_kib": doctor.MIN_EDITOR_KDF_KIB,
    "codename_kdf_memory_kib": doctor.MIN_CODENAME_KDF_KIB,
}


def onion_name(seed: str) -> str:
    public_key = hashlib.sha256(seed.encode()).digest()
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + b"\x03").digest()[:2]
    return base64.b32encode(public_key + checksum + b"\x03").decode().lower() + ".onion"


SOURCE_ONION = onion_name("source")
EDITOR_ONION = onion_name("editor")


@pytest.fixture
def tor_port() -> Iterator[int]:
    """Something listening where tor would: doctor only opens a TCP connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture
def good(tmp_path: Path, make_settings: SettingsFactory) -> Instance:
    tsa = {"tsa_url": "https://tsa.example/", "tsa_ca_file": make_authority_files(tmp_path / "tsa")}
    instance = initialise(make_settings(tmp_path / "data", onion_address=SOURCE_ONION, **REAL_KDF, **tsa))
    instance.add_editor("ana", admin=True)
    return instance


CLIENT_KEY = "descriptor:x25519:" + "A" * 52


def _hostnames(tmp_path: Path, source: str = SOURCE_ONION, editor: str = EDITOR_ONION) -> tuple[Path, Path]:
    """HiddenServiceDirs as tor lays them out; the editor's has one client key."""
    source_file, editor_file = tmp_path / "source" / "hostname", tmp_path / "editor" / "hostname"
    clients = editor_file.parent / "authorized_clients"
    clients.mkdir(parents=True, exist_ok=True)
    source_file.parent.mkdir(exist_ok=True)
    source_file.write_text(f"{source}\n")
    editor_file.write_text(f"{editor}\n")
    (clients / "ana.auth").write_text(f"{CLIENT_KEY}\n")
    return source_file, editor_file


def _options(tmp_path: Path, tor_port: int | None, **overrides: object) -> doctor.Options:
    source_file, editor_file = _hostnames(tmp_path)
    values: dict[str, object] = {
        "tor_address": None if tor_port is None else ("127.0.0.1", tor_port),
        "source_hostname": source_file,
        "editor_hostname": editor_file,
        **overrides,
    }
    return doctor.Options(**values)  # type: ignore[arg-type]


def _by_check(results: list[doctor.Result]) -> dict[str, list[doctor.Result]]:
    found: dict[str, list[doctor.Result]] = {}
    for result in results:
        found.setdefault(result.check, []).append(result)
    return found


def _statuses(results: list[doctor.Result], check: str) -> set[doctor.Status]:
    return {r.status for r in _by_check(results)[check]}


def _buzon_doctor(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "doctor", *args],
        env=server_env(settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_good_instance_passes(good: Instance, tmp_path: Path, tor_port: int) -> None:
    results = doctor.run_checks(good.settings, _options(tmp_path, tor_port))
    assert [r for r in results if r.status is doctor.Status.FAIL] == []
    # Only the disk may warn: its space and its encryption depend on the machine running the tests.
    assert {r.check for r in results if r.status is doctor.Status.WARN} <= {"disk", "encrypted storage"}
    assert doctor.exit_code(results) == 0
    checks = _by_check(results)
    checks_ok = ("data directory", "pepper", "database", "instance", "instance key", "editors", "clock", "tor", "KDF")
    for check in (*checks_ok, "time-stamping authority", "time stamps"):
        assert checks[check][0].status is doctor.Status.OK, checks[check]
    assert checks["source onion"][0].detail == SOURCE_ONION


def test_the_command_prints_each_check_and_exits_0(good: Instance, tmp_path: Path, tor_port: int) -> None:
    source_file, editor_file = _hostnames(tmp_path)
    result = _buzon_doctor(
        good.settings,
        tmp_path,
        f"--tor=127.0.0.1:{tor_port}",
        f"--source-hostname={source_file}",
        f"--editor-hostname={editor_file}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK   editors: 1 editor(s) hold the active newsroom key" in result.stdout
    assert f"OK   source onion: {SOURCE_ONION}" in result.stdout
    assert "FAIL" not in result.stdout


def test_loose_permissions_fail_with_a_chmod_fix(good: Instance, tmp_path: Path, tor_port: int) -> None:
    settings = good.settings
    settings.data_dir.chmod(0o755)
    settings.pepper_path.chmod(0o644)
    results = doctor.run_checks(settings, _options(tmp_path, tor_port))
    data_dir, pepper = _by_check(results)["data directory"][0], _by_check(results)["pepper"][0]
    assert data_dir.status is doctor.Status.FAIL
    assert data_dir.fix == f"chmod 700 {settings.data_dir}"
    assert pepper.status is doctor.Status.FAIL
    assert pepper.fix == f"chmod 600 {settings.pepper_path}"
    assert doctor.exit_code(results) == 1

    cli = _buzon_doctor(settings, tmp_path, f"--tor=127.0.0.1:{tor_port}")
    assert cli.returncode == 1
    assert f"     fix: chmod 600 {settings.pepper_path}" in cli.stdout


def test_a_missing_pepper_fails(good: Instance, tmp_path: Path, tor_port: int) -> None:
    good.settings.pepper_path.unlink()
    results = doctor.run_checks(good.settings, _options(tmp_path, tor_port))
    assert _statuses(results, "pepper") == {doctor.Status.FAIL}
    assert doctor.exit_code(results) == 1


def test_a_data_dir_without_a_database_fails_and_is_left_alone(
    tmp_path: Path, tor_port: int, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data", **REAL_KDF)
    settings.data_dir.mkdir(mode=0o700)
    results = doctor.run_checks(settings, _options(tmp_path, tor_port))
    database = _by_check(results)["database"][0]
    assert database.status is doctor.Status.FAIL
    assert database.fix == "run `buzon init`"
    assert list(settings.data_dir.iterdir()) == []

    cli = _buzon_doctor(settings, tmp_path, f"--tor=127.0.0.1:{tor_port}")
    assert cli.returncode == 1
    assert list(settings.data_dir.iterdir()) == []


def test_a_schema_without_init_is_not_initialised(
    tmp_path: Path, tor_port: int, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data", **REAL_KDF)
    settings.data_dir.mkdir(mode=0o700)
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine)
    engine.dispose()
    results = doctor.run_checks(settings, _options(tmp_path, tor_port))
    assert _statuses(results, "database") == {doctor.Status.OK}
    assert _statuses(results, "instance") == {doctor.Status.FAIL}
    assert doctor.exit_code(results) == 1


def test_no_editor_with_the_active_key_fails(tmp_path: Path, tor_port: int, make_settings: SettingsFactory) -> None:
    instance = initialise(make_settings(tmp_path / "data", onion_address=SOURCE_ONION, **REAL_KDF))
    instance.add_editor("bo", grant=False)
    results = doctor.run_checks(instance.settings, _options(tmp_path, tor_port))
    editors = _by_check(results)["editors"][0]
    assert editors.status is doctor.Status.FAIL
    assert "buzon editor grant" in editors.fix


def test_an_unreachable_tor_port_fails(good: Instance, tmp_path: Path) -> None:
    results = doctor.run_checks(good.settings, _options(tmp_path, free_port()))
    assert _statuses(results, "tor") == {doctor.Status.FAIL}
    assert doctor.exit_code(results) == 1


@pytest.mark.parametrize(
    "content",
    [
        "not an onion",
        SOURCE_ONION.upper(),
        SOURCE_ONION.replace(".onion", ".com"),
        SOURCE_ONION[:10] + ("a" if SOURCE_ONION[10] != "a" else "b") + SOURCE_ONION[11:],  # checksum breaks
        "",
    ],
)
def test_a_malformed_onion_hostname_fails(good: Instance, tmp_path: Path, tor_port: int, content: str) -> None:
    options = _options(tmp_path, tor_port)
    assert options.source_hostname is not None
    options.source_hostname.write_text(content)
    results = doctor.run_checks(good.settings, options)
    assert _statuses(results, "source onion") == {doctor.Status.FAIL}
    assert doctor.exit_code(results) == 1


def test_an_unreadable_hostname_file_fails(good: Instance, tmp_path: Path, tor_port: int) -> None:
    options = _options(tmp_path, tor_port, editor_hostname=tmp_path / "nowhere" / "hostname")
    results = doctor.run_checks(good.settings, options)
    assert _statuses(results, "editor onion") == {doctor.Status.FAIL}


def test_the_onion_address_setting_must_match_the_source_service(
    tmp_path: Path, tor_port: int, make_settings: SettingsFactory
) -> None:
    instance = initialise(make_settings(tmp_path / "data", onion_address=EDITOR_ONION, **REAL_KDF))
    instance.add_editor("cy")
    results = doctor.run_checks(instance.settings, _options(tmp_path, tor_port))
    mismatch = _by_check(results)["onion address"][0]
    assert mismatch.status is doctor.Status.FAIL
    assert mismatch.fix == f"set BUZON_ONION_ADDRESS={SOURCE_ONION}"

    options = _options(tmp_path, tor_port, source_hostname=None, editor_hostname=None)
    unset = initialise(make_settings(tmp_path / "other", **REAL_KDF))
    assert _statuses(doctor.run_checks(unset.settings, options), "onion address") == {doctor.Status.WARN}


def test_one_onion_name_for_both_services_fails(good: Instance, tmp_path: Path, tor_port: int) -> None:
    options = _options(tmp_path, tor_port)
    assert options.editor_hostname is not None
    options.editor_hostname.write_text(SOURCE_ONION)
    results = doctor.run_checks(good.settings, options)
    assert doctor.Status.FAIL in _statuses(results, "onion address")


def test_insecure_fast_kdf_fails(tmp_path: Path, tor_port: int, make_settings: SettingsFactory) -> None:
    instance = initialise(make_settings(tmp_path / "data", onion_address=SOURCE_ONION))
    instance.add_editor("di")
    results = doctor.run_checks(instance.settings, _options(tmp_path, tor_port))
    kdf = _by_check(results)["KDF"][0]
    assert kdf.status is doctor.Status.FAIL
    assert "BUZON_INSECURE_FAST_KDF" in kdf.fix
    # The toy codename costs were fixed in the database at init: that fails too.
    assert _statuses(results, "instance") == {doctor.Status.FAIL}


def test_a_clock_before_the_newest_recorded_date_fails(good: Instance, tmp_path: Path, tor_port: int) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    results = doctor.run_checks(good.settings, _options(tmp_path, tor_port), today=yesterday)
    assert _statuses(results, "clock") == {doctor.Status.FAIL}


def test_disk_space_warns_below_ten_percent_or_five_gib() -> None:
    gib = doctor.GIB
    assert doctor.assess_disk(total=100 * gib, free=20 * gib).status is doctor.Status.OK
    assert doctor.assess_disk(total=100 * gib, free=9 * gib).status is doctor.Status.WARN
    assert doctor.assess_disk(total=20 * gib, free=4 * gib).status is doctor.Status.WARN


def test_disk_space_within_the_upload_reserve_fails() -> None:
    gib = doctor.GIB
    assert doctor.assess_disk(total=100 * gib, free=gib // 8, reserve=gib // 4).status is doctor.Status.FAIL
    assert doctor.assess_disk(total=100 * gib, free=gib // 2, reserve=gib // 4).status is doctor.Status.WARN


def test_the_store_pool_check_warns_when_a_mid_day_batch_is_near(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store", pool_size=8)
    store.fill_pool()
    assert doctor.check_store_pool(store).status is doctor.Status.OK
    taken = [store.begin()[1] for _ in range(7)]  # one free slot of eight left
    for blob in taken:
        blob.file.write(b"body")
        blob.file.flush()
    try:
        assert doctor.check_store_pool(store).status is doctor.Status.WARN
    finally:
        for blob in taken:
            blob.discard()
    assert doctor.check_store_pool(BlobStore(tmp_path / "missing")).status is doctor.Status.SKIP


def test_listening_on_every_interface_fails_outside_a_container(good: Instance) -> None:
    outside = doctor.check_config(good.settings, listen_host="0.0.0.0", in_container=False)
    inside = doctor.check_config(good.settings, listen_host="0.0.0.0", in_container=True)
    local = doctor.check_config(good.settings, listen_host="127.0.0.1", in_container=False)
    assert _statuses(outside, "listen address") == {doctor.Status.FAIL}
    assert _statuses(inside, "listen address") == {doctor.Status.OK}
    assert _statuses(local, "listen address") == {doctor.Status.OK}


def test_a_bad_tor_address_is_refused_by_the_command(good: Instance, tmp_path: Path) -> None:
    result = _buzon_doctor(good.settings, tmp_path, "--tor=nonsense")
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


@pytest.mark.parametrize("key", [None, "descriptor:x25519:not-a-key", "descriptor:ed25519:" + "A" * 52])
def test_an_editor_portal_without_a_client_key_fails(
    good: Instance, tmp_path: Path, tor_port: int, key: str | None
) -> None:
    # Tor publishes a service openly when no client key loads.
    options = _options(tmp_path, tor_port)
    assert options.editor_hostname is not None
    clients = options.editor_hostname.parent / "authorized_clients"
    (clients / "ana.auth").unlink()
    if key is not None:
        (clients / "bo.auth").write_text(key)
    (result,) = _by_check(doctor.run_checks(good.settings, options))["editor client authorisation"]
    assert result.status is doctor.Status.FAIL
    assert "public" in result.detail
    assert doctor.exit_code(doctor.run_checks(good.settings, options)) == 1


def test_client_keys_that_doctor_cannot_see_only_warn(good: Instance, tmp_path: Path, tor_port: int) -> None:
    options = _options(tmp_path, tor_port)
    assert options.editor_hostname is not None
    clients = options.editor_hostname.parent / "authorized_clients"
    (clients / "ana.auth").unlink()
    clients.rmdir()
    (result,) = _by_check(doctor.run_checks(good.settings, options))["editor client authorisation"]
    assert result.status is doctor.Status.WARN


def _block_device(root: Path, name: str, *, dm_uuid: str | None = None, slaves: tuple[Path, ...] = ()) -> Path:
    """A directory laid out as /sys/dev/block/<major:minor> is for one device."""
    node = root / "devices" / name
    (node / "slaves").mkdir(parents=True)
    if dm_uuid is not None:
        (node / "dm").mkdir()
        (node / "dm" / "uuid").write_text(dm_uuid + "\n")
    for slave in slaves:
        (node / "slaves" / slave.name).symlink_to(slave)
    return node


def _data_dir_on(tmp_path: Path, node: Path) -> tuple[Path, Path]:
    """A data dir, and a sys/dev/block whose entry for the data dir's device is ``node``."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    device = data_dir.stat().st_dev
    sys_dev_block = tmp_path / "sys-dev-block"
    sys_dev_block.mkdir(exist_ok=True)
    (sys_dev_block / f"{os.major(device)}:{os.minor(device)}").symlink_to(node)
    return data_dir, sys_dev_block


def _disk(root: Path) -> Path:
    return _block_device(root, "sda2")


@pytest.mark.parametrize(
    ("layout", "status"),
    [
        ("plain partition", doctor.Status.WARN),
        ("luks", doctor.Status.OK),
        ("lvm on luks", doctor.Status.OK),
        ("lvm on a plain partition", doctor.Status.WARN),
        ("raid of luks and a plain partition", doctor.Status.WARN),
    ],
)
def test_the_data_dir_should_rest_on_dm_crypt(tmp_path: Path, layout: str, status: doctor.Status) -> None:
    root = tmp_path / "sys"
    disk = _disk(root)
    luks = _block_device(root, "dm-0", dm_uuid="CRYPT-LUKS2-7a1c-luks", slaves=(disk,))
    node = {
        "plain partition": disk,
        "luks": luks,
        "lvm on luks": _block_device(root, "dm-1", dm_uuid="LVM-abc", slaves=(luks,)),
        "lvm on a plain partition": _block_device(root, "dm-2", dm_uuid="LVM-def", slaves=(disk,)),
        "raid of luks and a plain partition": _block_device(root, "md0", slaves=(luks, disk)),
    }[layout]
    data_dir, sys_dev_block = _data_dir_on(tmp_path, node)
    result = doctor.check_encrypted_storage(data_dir, sys_dev_block)
    assert result.status is status, result
    assert (result.fix == "") is (status is doctor.Status.OK)


def test_an_unknown_device_is_skipped_with_advice(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = doctor.check_encrypted_storage(tmp_path / "data", tmp_path / "empty-sys")
    assert result.status is doctor.Status.SKIP
    assert "host" in result.fix


def test_this_machines_own_disk_is_read_from_sysfs(good: Instance) -> None:
    result = doctor.check_encrypted_storage(good.settings.data_dir)
    device = good.settings.data_dir.stat().st_dev
    node = Path("/sys/dev/block") / f"{os.major(device)}:{os.minor(device)}"
    expected = (
        doctor.Status.SKIP
        if not node.exists()
        else doctor.Status.OK
        if doctor.is_encrypted_block_device(node.resolve())
        else doctor.Status.WARN
    )
    assert result.status is expected


def test_the_sandbox_check_runs_a_real_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = Sandbox(SandboxLimits())
    result = doctor.check_sandbox(sandbox)
    assert result.status is doctor.Status.OK, result  # root here: a network namespace is always allowed
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a worker that cannot start
    assert doctor.check_sandbox(sandbox).status is doctor.Status.FAIL


def test_the_languages_check_names_a_catalog_that_cannot_be_read() -> None:
    assert doctor.check_catalogs().status is doctor.Status.OK
    assert doctor.check_catalogs(["en", "xx"]) == doctor.Result(
        "languages",
        doctor.Status.FAIL,
        "shown in English instead: xx",
        "reinstall Buzón: the package lost its app/translations .po files",
    )


def test_time_stamping_left_unconfigured_warns_and_a_missing_ca_fails(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    off = make_settings(tmp_path / "off")
    assert doctor.check_timestamping(off).status is doctor.Status.WARN
    no_ca = make_settings(tmp_path / "no-ca", tsa_url="https://tsa.example/", tsa_ca_file=tmp_path / "missing.pem")
    assert doctor.check_timestamping(no_ca).status is doctor.Status.FAIL
    via_clearnet = make_settings(
        tmp_path / "clear", tsa_url="https://tsa.example/", tsa_ca_file=make_authority_files(tmp_path / "ca"),
        tsa_via_tor=False,
    )  # fmt: skip
    result = doctor.check_timestamping(via_clearnet)
    assert result.status is doctor.Status.OK
    assert "clearnet" in result.detail


def test_days_of_receipts_waiting_for_a_time_stamp_warn(db: Session, make_source: SourceFactory) -> None:
    today = utc_today()
    make_source("a tip")
    assert doctor.check_anchors(db, today).status is doctor.Status.OK  # today's wait for tomorrow
    db.execute(update(EvidenceLeaf).values(day=today - dt.timedelta(days=3)))
    db.commit()
    result = doctor.check_anchors(db, today)
    assert result.status is doctor.Status.WARN
    assert (today - dt.timedelta(days=3)).isoformat() in result.detail
