"""The parser sandbox (app/media/sandbox.py, app/media/worker.py): real worker
processes, real hostile files, real limits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.crypto import Sanitised
from app.media.report import metadata_report, safe_preview
from app.media.sandbox import WORKER_ENVIRONMENT, Sandbox, SandboxLimits, _exchange
from app.media.strip import strip_metadata
from app.media.worker import NICENESS
from tests.media.test_strip import make_docx, make_jpeg, make_pdf
from tests.support import bombs

MIB = 1 << 20
# What the suite's bombs are held to: far below what any of them needs, far above any real file here.
TIGHT = SandboxLimits(memory_bytes=384 * MIB, cpu_seconds=3, wall_seconds=8, workers=2)

INFLATING_BOMBS: dict[str, Callable[[], bytes]] = {
    "double-filter PDF": bombs.double_filter_pdf,
    "object-stream PDF": bombs.object_stream_pdf,
    "zip entry bomb": bombs.zip_entry_docx,
}
IMAGE_BOMBS: dict[str, Callable[[], bytes]] = {"PNG": bombs.png_bomb, "WebP": bombs.webp_bomb, "HEIC": bombs.heic_bomb}
# Valid images, cleaned by editing their boxes without a pixel decoded; the others are refused.
CLEANABLE_BOMBS = {"HEIC"}


@pytest.fixture(scope="module")
def made() -> dict[str, bytes]:
    return {name: make() for name, make in {**INFLATING_BOMBS, **IMAGE_BOMBS}.items()}


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(TIGHT)


@pytest.mark.parametrize("make", [make_jpeg, make_pdf, make_docx], ids=["jpeg", "pdf", "docx"])
def test_a_real_file_is_cleaned_in_the_worker_exactly_as_the_cleaner_cleans_it(
    sandbox: Sandbox, make: Callable[[], bytes]
) -> None:
    data = make()
    expected = strip_metadata(data)
    cleaned, status, detected = sandbox.strip(data)
    assert status is Sanitised.STRIPPED
    assert bytes(cleaned) == expected.data != data
    assert detected == expected.kind  # for the intake receipt (docs/evidence.md)


def test_the_report_and_the_preview_come_from_the_worker_as_the_parsers_make_them(sandbox: Sandbox) -> None:
    data = make_jpeg()
    report, previewable = sandbox.report(data, "image/jpeg", "x.jpg")
    assert report == metadata_report(data, "image/jpeg", "x.jpg")
    assert previewable
    assert sandbox.preview(data) == safe_preview(data)


@pytest.mark.parametrize("name", ["double-filter PDF", "zip entry bomb"])
def test_a_bomb_that_the_cleaner_must_inflate_ends_as_failed_and_comes_back_as_sent(
    sandbox: Sandbox, made: dict[str, bytes], name: str
) -> None:
    # In-process, the first held the GIL for seconds per GiB and the second took 550 MB.
    started = time.monotonic()
    kept, status, _ = sandbox.strip(made[name])
    assert status is Sanitised.FAILED
    assert kept == made[name]
    assert time.monotonic() - started < TIGHT.wall_seconds + 2


@pytest.mark.parametrize("name", [*INFLATING_BOMBS, *IMAGE_BOMBS])
def test_every_task_on_every_bomb_ends_within_the_deadline(sandbox: Sandbox, made: dict[str, bytes], name: str) -> None:
    for task in (
        lambda: sandbox.strip(made[name]),
        lambda: sandbox.report(made[name], "", ""),
        lambda: sandbox.preview(made[name]),
    ):
        started = time.monotonic()
        task()
        assert time.monotonic() - started < TIGHT.wall_seconds + 2


@pytest.mark.parametrize("name", IMAGE_BOMBS)
def test_an_image_bomb_is_never_decoded(sandbox: Sandbox, made: dict[str, bytes], name: str) -> None:
    # The cleaners copy chunks without decoding pixels, and previews refuse such sizes.
    cleaned, status, _ = sandbox.strip(made[name])
    if name in CLEANABLE_BOMBS:
        assert status is Sanitised.STRIPPED
        assert bombs.HEIC_BOMB_ARTIST in made[name]
        assert bombs.HEIC_BOMB_ARTIST not in cleaned
    else:
        assert status is not Sanitised.STRIPPED
    assert sandbox.preview(made[name]) is None


def _workers_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"app.media.worker" in command:
            found.append(int(entry))
    return found


def _is_confined(pid: int) -> bool:
    """Whether a worker has run ``confine`` (its niceness is NICENESS): from then on it opens nothing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[16]) == NICENESS
    except (OSError, ValueError, IndexError):
        return False


@pytest.fixture
def busy_workers(made: dict[str, bytes]) -> tuple[Sandbox, list[list[int]]]:
    """Four bombs stripped at once by a sandbox of two workers, its workers sampled as they run."""
    sandbox = Sandbox(SandboxLimits(memory_bytes=384 * MIB, cpu_seconds=3, wall_seconds=4, workers=2))
    threads = [threading.Thread(target=sandbox.strip, args=(made["double-filter PDF"],), daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    samples: list[list[int]] = []
    while any(thread.is_alive() for thread in threads):
        samples.append(_workers_of(os.getpid()))
        time.sleep(0.05)
    return sandbox, samples


def test_no_more_workers_run_than_allowed(busy_workers: tuple[Sandbox, list[list[int]]]) -> None:
    _, samples = busy_workers
    assert max(len(sample) for sample in samples) == 2


def test_a_worker_inherits_no_secret_and_no_open_file(made: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUZON_DATABASE_URL", "postgresql://editor:secret@db/buzon")
    sandbox = Sandbox(TIGHT)
    thread = threading.Thread(target=sandbox.strip, args=(made["double-filter PDF"],), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not (workers := [w for w in _workers_of(os.getpid()) if _is_confined(w)]) and time.monotonic() < deadline:
            time.sleep(0.01)
        (worker,) = workers
        environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        assert sorted(e.decode() for e in environ if e) == sorted(f"{k}={v}" for k, v in WORKER_ENVIRONMENT.items())
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{worker}/fd")) == [0, 1, 2]
        assert os.readlink(f"/proc/{worker}/cwd") == "/"
    finally:
        thread.join()


CONFINED = """
import json, os, signal, socket, sys
from app.media.worker import confine
port, path = int(sys.argv[1]), sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
out = confine(64 * 1024 * 1024, 5)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    out["network"] = "reached"
except OSError:
    out["network"] = "refused"
try:
    with open(path, "wb") as f:
        f.write(b"plaintext")
    out["disk"] = "written"
except OSError:
    out["disk"] = "refused"
try:
    block = bytearray(256 * 1024 * 1024)
    out["memory"] = "allocated"
except MemoryError:
    out["memory"] = "refused"
out["core"] = __import__("resource").getrlimit(__import__("resource").RLIMIT_CORE)[1]
out["dumpable"] = bool(__import__("app.hardening", fromlist=["x"]).is_dumpable())
out["nice"] = os.nice(0)
print(json.dumps(out))
"""


def test_a_confined_worker_reaches_no_network_writes_nothing_and_cannot_grow(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-I", "-c", CONFINED, str(port), str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env=WORKER_ENVIRONMENT,
        )
    facts = json.loads(result.stdout)
    assert facts == {
        "network_isolated": True,
        "network": "refused",
        "disk": "refused",
        "memory": "refused",
        "core": 0,
        "dumpable": False,
        "nice": NICENESS,
    }
    assert not (tmp_path / "out").exists() or (tmp_path / "out").stat().st_size == 0


def test_an_answer_beyond_its_cap_is_refused() -> None:
    # What a worker taken over by a file could try: flood the server's memory through the pipe.
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x' * 50_000_000)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert _exchange(process, b"{}\n", b"", 1_000_000, wall_seconds=10) is None
    assert process.wait(timeout=10) != 0 or process.returncode is not None


def test_a_worker_that_never_answers_is_killed_at_the_deadline() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    started = time.monotonic()
    assert _exchange(process, b"{}\n", b"", 1000, wall_seconds=0.5) is None
    assert time.monotonic() - started < 5
    assert process.wait(timeout=5) == -9


def test_a_worker_that_fails_fails_only_its_own_file(sandbox: Sandbox) -> None:
    assert sandbox.run({"task": "no such task"}, b"data", max_payload=10) is None
    data = make_jpeg()
    cleaned, status, _ = sandbox.strip(data)
    assert status is Sanitised.STRIPPED
    assert bytes(cleaned) == strip_metadata(data).data
