"""kill -9 during uploads (issue 6): nothing partial is ever shown, nothing
unrecorded stays on disk, acknowledged tips survive, and the service restarts.

Four uploads at a time stream at a steady pace into ``buzon serve``; the
server is killed at a random moment (seeded), then started again. Five rounds
make twenty uploads. The random moments land before, during and after
bodies are written and rows committed.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    SettingsFactory,
    StoredItem,
    assert_database_and_store_sound,
    codename_in,
    decrypt_every_submission,
    initialise,
    multipart_body,
    submit_tip,
)

ROUNDS = 5
UPLOADS_PER_ROUND = 4
CHUNK = 128 * 1024


@dataclass
class Upload:
    marker: str
    message: str
    file_name: str
    file_content: bytes
    outcome: str = "pending"  # "acknowledged", "refused" or "cut off"


@pytest.fixture
def crash_instance(tmp_path: Path, make_settings: SettingsFactory) -> Instance:
    return initialise(make_settings(tmp_path / "data"))


def _upload(marker: str, rng: random.Random) -> Upload:
    size = rng.randrange(3, 9) * 1024 * 1024 + rng.randrange(CHUNK)
    # Random bytes with the marker inside: each file is unique and recognisable.
    content = bytearray(rng.randbytes(size))
    content[1000 : 1000 + len(marker)] = marker.encode()
    return Upload(marker, f"tip {marker}: the shipment leaves on Tuesday", f"{marker}.bin", bytes(content))


def _paced(body: bytes) -> Iterator[bytes]:
    # A slow Tor upload: chunks with pauses, so a kill can land mid-body.
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]
        time.sleep(0.03)


def _send(server: LiveServer, upload: Upload, start: threading.Barrier) -> None:
    with httpx.Client(timeout=30) as client:
        try:
            url = server.submit_url(client)
            boundary = f"----crash{secrets.token_hex(8)}"
            body = multipart_body(
                boundary,
                [("message", None, upload.message.encode()), ("files", upload.file_name, upload.file_content)],
            )
            start.wait()
            response = client.post(
                url, content=_paced(body), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
            )
        except (httpx.HTTPError, threading.BrokenBarrierError):
            upload.outcome = "cut off"
            return
    if response.status_code == 200 and 'id="codename"' in response.text:
        codename_in(response.text)
        upload.outcome = "acknowledged"
    else:
        upload.outcome = "refused"


def _round(server: LiveServer, uploads: list[Upload], kill_after: float) -> None:
    start = threading.Barrier(len(uploads) + 1)
    threads = [threading.Thread(target=_send, args=(server, u, start)) for u in uploads]
    for thread in threads:
        thread.start()
    start.wait(timeout=30)
    time.sleep(kill_after)
    server.process.kill()
    server.process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=60)


def test_kill_9_during_uploads_loses_nothing_acknowledged_and_leaves_nothing_partial(
    crash_instance: Instance, server_factory: ServerFactory
) -> None:
    settings = crash_instance.settings
    rng = random.Random(0xB0250)
    uploads: list[Upload] = []
    servers = []
    for _ in range(ROUNDS):
        server = server_factory(crash_instance)
        servers.append(server)
        batch = [_upload(secrets.token_hex(6), rng) for _ in range(UPLOADS_PER_ROUND)]
        uploads += batch
        _round(server, batch, kill_after=rng.uniform(0.2, 2.5))

    # The sixth start sweeps what the fifth kill left; then it must just work.
    server = server_factory(crash_instance)
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{server.source_url}/healthz").status_code == 200
        after = submit_tip(server, client, "after the crashes: still taking tips")
        assert after.status_code == 200
        assert 'id="codename"' in after.text

    outcomes = [u.outcome for u in uploads]
    assert "pending" not in outcomes
    assert "refused" not in outcomes, outcomes
    assert outcomes.count("cut off") >= 1, "no kill landed during an upload: the test tested nothing"

    tips = decrypt_every_submission(settings, crash_instance.recovery_secret)
    by_marker: dict[str, list[list[StoredItem]]] = {}
    for tip in tips:
        message = next(content for kind, _, content in tip if kind == "message").decode()
        by_marker.setdefault(message.split()[1].rstrip(":") if message.startswith("tip ") else "after", []).append(tip)
    assert len(by_marker.pop("after")) == 1
    sent = {u.marker: u for u in uploads}
    assert set(by_marker) <= set(sent), "a stored tip matches nothing that was sent"
    for marker, stored in by_marker.items():
        upload = sent[marker]
        assert len(stored) == 1, f"tip {marker} stored {len(stored)} times"
        assert sorted(stored[0]) == sorted(
            [("message", "", upload.message.encode()), ("file", upload.file_name, upload.file_content)]
        ), f"tip {marker} is incomplete or altered"
    for upload in uploads:
        if upload.outcome == "acknowledged":
            assert upload.marker in by_marker, f"acknowledged tip {upload.marker} was lost"

    assert_database_and_store_sound(settings)
    for started in [*servers, server]:
        assert [p for p in started.tmp_dir.rglob("*")] == [], "the server left temporary files"
    for started in [*servers, server]:
        assert b"Traceback" not in started.log_path.read_bytes()
