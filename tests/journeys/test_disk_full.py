"""A full disk (issue 6): the source gets a clear page, nothing is corrupted,
and earlier tips stay intact and readable.

The data dir (database and ciphertext store) lives on a small tmpfs mounted
for the test, so the disk really fills: no write is faked. Mounting needs
root; elsewhere the tests skip, unless BUZON_REQUIRE_MOUNT=1 (tests/run.sh
sets it) makes that a failure.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.errors import StorageFull
from app.web.error_pages import page_for
from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    SettingsFactory,
    assert_database_and_store_sound,
    decrypt_every_submission,
    initialise,
    multipart_body,
    submit_tip,
)
from tests.support.desk import inbox_ids, source_page

DISK_MIB = 48
MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a small tmpfs here: {mounted.stderr.decode(errors='replace').strip()}"
        if os.environ.get("BUZON_REQUIRE_MOUNT") == "1":
            pytest.fail(f"{reason}, and BUZON_REQUIRE_MOUNT=1 requires the disk-full tests")
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        # Lazy: a server still holding files there must not keep the mount alive.
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _instance_on(make_settings: SettingsFactory, disk: Path, reserve_mib: int) -> Instance:
    return initialise(make_settings(disk / "data", store_reserve_mib=reserve_mib, max_submission_bytes=200 * MIB))


def _post_file(server: LiveServer, client: httpx.Client, size: int, *, declare_length: bool) -> httpx.Response:
    boundary = f"----full{secrets.token_hex(8)}"
    body = multipart_body(
        boundary, [("message", None, b"a large leak"), ("files", "leak.bin", secrets.token_bytes(size))]
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    url = server.submit_url(client)
    if declare_length:
        return client.post(url, content=body, headers=headers)
    return client.post(
        url, content=iter([body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024)]), headers=headers
    )


def _assert_out_of_space_page(response: httpx.Response) -> None:
    assert response.status_code == page_for(StorageFull()).status_code, response.text
    assert "The tip line is out of space" in response.text
    assert "Nothing was saved" in response.text
    assert "Traceback" not in response.text
    assert "Errno" not in response.text
    assert "No space left" not in response.text


def _earlier_tips(server: LiveServer, client: httpx.Client) -> list[tuple[str, bytes]]:
    tips = []
    for number in range(2):
        message = f"earlier tip {number}: {secrets.token_hex(8)}"
        content = secrets.token_bytes(2 * MIB)
        assert submit_tip(server, client, message, [(f"evidence-{number}.bin", content)]).status_code == 200
        tips.append((message, content))
    return tips


def _assert_earlier_tips_intact(instance: Instance, tips: list[tuple[str, bytes]]) -> None:
    assert_database_and_store_sound(instance.settings)
    stored = decrypt_every_submission(instance.settings, instance.recovery_secret)
    for number, (message, content) in enumerate(tips):
        expected = sorted([("message", "", message.encode()), ("file", f"evidence-{number}.bin", content)])
        assert sum(sorted(items) == expected for items in stored) == 1


def _fill(directory: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for block in (b"\0" * MIB, b"\0" * 4096, b"\0"):
            _write_until_full(fd, block)
    finally:
        os.close(fd)
    return filler


def _write_until_full(fd: int, block: bytes) -> None:
    while True:
        try:
            os.write(fd, block)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            return


def test_an_upload_that_fills_the_disk_gets_a_clear_page_and_corrupts_nothing(
    small_disk: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    instance = _instance_on(make_settings, small_disk, reserve_mib=0)
    server = server_factory(instance)
    editor = instance.add_editor()
    with httpx.Client(timeout=60) as source, httpx.Client(timeout=60) as newsroom:
        tips = _earlier_tips(server, source)
        # Larger than the whole disk, so the write itself hits ENOSPC mid-file.
        for declare_length in (True, False):
            _assert_out_of_space_page(_post_file(server, source, (DISK_MIB + 8) * MIB, declare_length=declare_length))
        _assert_earlier_tips_intact(instance, tips)

        # Now a disk with not one block free: even a short message cannot be stored.
        filler = _fill(small_disk)
        _assert_out_of_space_page(submit_tip(server, source, "a short tip on a full disk"))
        filler.unlink()
        _assert_earlier_tips_intact(instance, tips)

        # With room again, everything works: tips go in, editors read the old ones.
        assert submit_tip(server, source, "a tip once there is room").status_code == 200
        server.login(newsroom, editor)
        pages = [source_page(server, newsroom, source_id) for source_id in inbox_ids(server, newsroom)]
        for message, _ in tips:
            assert sum(message in page for page in pages) == 1
    assert b"Traceback" not in server.log_path.read_bytes()


def test_uploads_stop_at_the_reserve_so_the_newsroom_keeps_room_to_work(
    small_disk: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    instance = _instance_on(make_settings, small_disk, reserve_mib=16)
    server = server_factory(instance)
    editor = instance.add_editor()
    with httpx.Client(timeout=60) as source, httpx.Client(timeout=60) as newsroom:
        tips = _earlier_tips(server, source)
        # Fits on the disk (about 43 MiB free), but would leave well under the reserve.
        size = (DISK_MIB - 12) * MIB
        assert shutil.disk_usage(small_disk).free > size + 2 * MIB, "the refusal must come from the reserve"
        # Refused up front when the length is declared, and mid-stream when it is not.
        _assert_out_of_space_page(_post_file(server, source, size, declare_length=True))
        _assert_out_of_space_page(_post_file(server, source, size, declare_length=False))
        _assert_earlier_tips_intact(instance, tips)
        assert submit_tip(server, source, "a small tip still fits").status_code == 200
        # The editor's login and reply write rows: the reserve leaves room for them.
        server.login(newsroom, editor)
        assert len(inbox_ids(server, newsroom)) == 3
    assert b"Traceback" not in server.log_path.read_bytes()
