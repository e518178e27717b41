"""The ciphertext store after crashes: nothing half-written under a name, and a
sweep that removes unrecorded bodies without touching a live writer's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.storage import PARTIAL_MIN_AGE_SECONDS, PARTIAL_SUFFIX, BlobStore

# A writer in another process: it writes a body, names it, then waits for
# "release" on stdin (its rows "committing") or to be killed.
WRITER = """
import sys
from pathlib import Path
from app.storage import BlobStore
store = BlobStore(Path(sys.argv[1]))
name, blob = store.begin()
blob.file.write(b"x" * 200_000)
if sys.argv[2] == "commit":
    blob.commit()
print(name, flush=True)
if sys.stdin.readline().strip() == "release":
    blob.release()
    print("released", flush=True)
sys.stdin.readline()
"""


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def _writer(root: Path, stage: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), stage],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            pipe.close()


def test_a_body_being_written_has_no_name_in_the_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    name, blob = store.begin()
    blob.file.write(b"ciphertext")
    blob.file.flush()
    assert _files(tmp_path) == []
    blob.commit()
    blob.release()
    assert _files(tmp_path) == [name]
    with store.open(name) as body:
        assert body.read() == b"ciphertext"


def test_a_discarded_body_leaves_nothing_before_or_after_commit(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    _, unnamed = store.begin()
    unnamed.discard()
    _, named = store.begin()
    named.commit()
    named.discard()
    named.discard()
    assert _files(tmp_path) == []


def test_the_sweep_keeps_recorded_bodies_and_removes_unrecorded_ones(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    names = []
    for _ in range(3):
        name, blob = store.begin()
        blob.commit()
        blob.release()
        names.append(name)
    assert store.sweep_abandoned(lambda: {names[0], names[2]}) == 1
    assert _files(tmp_path) == sorted([names[0], names[2]])


def test_the_sweep_leaves_a_named_body_whose_writer_has_not_recorded_it_yet(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    name, blob = store.begin()
    blob.commit()
    assert store.sweep_abandoned(set) == 0
    assert _files(tmp_path) == [name]
    blob.discard()


def test_a_writer_that_records_its_body_during_the_sweep_keeps_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    name, blob = store.begin()
    blob.commit()
    calls: list[int] = []

    def referenced() -> set[str]:
        # The first look misses the row; the writer then commits and lets go.
        calls.append(1)
        if len(calls) == 1:
            blob.release()
            return set()
        return {name}

    assert store.sweep_abandoned(referenced) == 0
    assert len(calls) == 2
    assert _files(tmp_path) == [name]


def test_a_writer_killed_mid_body_leaves_nothing(tmp_path: Path) -> None:
    child, _ = _writer(tmp_path, "write")
    assert _files(tmp_path) == []
    _kill(child)
    assert _files(tmp_path) == []


def test_a_body_named_by_a_live_writer_in_another_process_survives_the_sweep(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    child, name = _writer(tmp_path, "commit")
    try:
        assert store.sweep_abandoned(set) == 0
        assert _files(tmp_path) == [name]
    finally:
        _kill(child)
    # The writer died before recording it: now it goes.
    assert store.sweep_abandoned(set) == 1
    assert _files(tmp_path) == []


def test_a_body_released_by_its_writer_is_kept_while_recorded(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    child, name = _writer(tmp_path, "commit")
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("release\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "released"
    try:
        assert store.sweep_abandoned(lambda: {name}) == 0
        assert _files(tmp_path) == [name]
    finally:
        _kill(child)


def test_old_unlocked_partials_go_and_fresh_ones_stay(tmp_path: Path) -> None:
    # Filesystems without O_TMPFILE write named partials (app/storage.py).
    store = BlobStore(tmp_path)
    (tmp_path / "ab").mkdir()
    old = tmp_path / "ab" / ("ab" + "0" * 30 + PARTIAL_SUFFIX)
    fresh = tmp_path / "ab" / ("ab" + "1" * 30 + PARTIAL_SUFFIX)
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    long_ago = time.time() - PARTIAL_MIN_AGE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    assert store.sweep_abandoned(set) == 1
    assert _files(tmp_path) == [fresh.name]
