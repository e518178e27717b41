"""The ciphertext store (docs/storage.md): bodies in slots made ahead and taken
at random, file times that date nothing, and a sweep after crashes that removes
unrecorded bodies without touching a live writer's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.storage import BlobStore, EmptyBody, normalise_times
from tests.support import bodies_in

# A writer in another process: it writes a body, then waits for "release" on
# stdin (its rows "committing") or to be killed.
WRITER = """
import sys
from pathlib import Path
from app.storage import BlobStore
store = BlobStore(Path(sys.argv[1]), pool_size=4)
name, blob = store.begin()
blob.file.write(b"x" * 200_000)
blob.file.flush()
if sys.argv[2] == "commit":
    blob.commit()
print(name, flush=True)
if sys.stdin.readline().strip() == "release":
    blob.release()
    print("released", flush=True)
sys.stdin.readline()
"""


def _bodies(root: Path) -> list[str]:
    return sorted(p.name for p in bodies_in(root))


def _slots(root: Path) -> dict[str, int]:
    """Name to inode number of every file, body or free slot."""
    return {p.name: p.stat().st_ino for p in root.rglob("*") if p.is_file()}


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


def _write(store: BlobStore, data: bytes = b"ciphertext") -> str:
    name, blob = store.begin()
    blob.file.write(data)
    blob.commit()
    blob.release()
    return name


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    store = BlobStore(tmp_path / "store", pool_size=16)
    store.fill_pool()
    return store


def test_a_body_goes_into_a_slot_made_before_it(store: BlobStore) -> None:
    slots = _slots(store.root)
    assert len(slots) == 16
    assert _bodies(store.root) == []
    name = _write(store)
    # Same name, same inode: the body's birth time and inode number are its slot's.
    assert _slots(store.root)[name] == slots[name]
    assert _bodies(store.root) == [name]
    with store.open(name) as body:
        assert body.read() == b"ciphertext"


def test_a_discarded_body_is_a_free_slot_again_before_or_after_commit(store: BlobStore) -> None:
    _, uncommitted = store.begin()
    uncommitted.file.write(b"a" * 100_000)
    uncommitted.discard()
    _, committed = store.begin()
    committed.file.write(b"b" * 100)
    committed.commit()
    committed.discard()
    committed.discard()
    assert _bodies(store.root) == []
    assert store.free_slots() == 16


def test_an_empty_body_cannot_be_committed(store: BlobStore) -> None:
    # It would read as a free slot, and the next writer would overwrite it.
    _, blob = store.begin()
    with pytest.raises(EmptyBody):
        blob.commit()
    blob.discard()


@pytest.mark.parametrize("pool_size", [16, 1], ids=["from the pool", "through emergency batches"])
def test_concurrent_writers_never_share_a_slot(tmp_path: Path, pool_size: int) -> None:
    names: list[str] = []
    barrier = threading.Barrier(12)

    def write() -> None:
        # A store object of its own: locks are per open file, as in separate processes.
        own = BlobStore(tmp_path, pool_size=pool_size)
        barrier.wait()
        names.append(_write(own, b"body"))

    threads = [threading.Thread(target=write) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 12
    assert _bodies(tmp_path) == sorted(names)


def _kendall_tau(order: list[int]) -> float:
    n = len(order)
    concordant = sum(1 for i in range(n) for j in range(i + 1, n) if order[i] < order[j])
    return 2 * (2 * concordant - n * (n - 1) / 2) / (n * (n - 1))


def test_slots_are_taken_in_an_order_unrelated_to_when_they_were_made(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, pool_size=400)
    store.fill_pool()
    made = _slots(tmp_path)
    taken = [made[_write(store)] for _ in range(100)]
    # Inode numbers rise with creation; a random choice leaves no trend (|tau| < 0.3 is 4.5 standard deviations).
    assert abs(_kendall_tau(taken)) < 0.3


def test_the_pool_is_topped_up_and_trimmed_but_a_writer_keeps_its_slot(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, pool_size=8)
    assert store.fill_pool() == 8
    for _ in range(3):
        _write(store)
    assert store.fill_pool() == 3
    assert store.free_slots() == 8
    for i in range(200):
        name = f"{i % 256:02x}" + f"{i:030x}"
        (tmp_path / name[:2] / name).touch()
    _, writing = store.begin()  # an empty slot under a live writer's lock
    try:
        store.fill_pool()  # trims 192 of 208: the writer's slot is almost surely picked, and must be spared
        assert store.free_slots() in (16, 17)  # 17 when the spared slot was among those picked
        assert writing.final_path.exists()
        writing.file.write(b"kept")
        writing.commit()
    finally:
        writing.release()
    assert len(_bodies(tmp_path)) == 4


def test_an_empty_store_makes_a_batch_when_a_body_needs_one(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, pool_size=5)
    name = _write(store)
    assert _bodies(tmp_path) == [name]
    assert store.free_slots() == 4


def test_reading_a_body_leaves_its_access_time_alone(store: BlobStore) -> None:
    name = _write(store)
    normalise_times(store.root)
    with store.open(name) as body:
        assert body.read() == b"ciphertext"
    store.free_slots()  # lists every bucket
    # relatime would move an atime that is not newer than the mtime: both are 0 here.
    assert (store.root / name[:2] / name).stat().st_atime_ns == 0
    assert (store.root / name[:2]).stat().st_atime_ns == 0


def test_normalising_sets_every_time_under_a_directory_to_zero(store: BlobStore) -> None:
    _write(store)
    (store.root.parent / "buzon.db").write_bytes(b"db")
    paths = [store.root.parent, *store.root.parent.rglob("*")]  # listed first: listing moves atimes
    before = time.time_ns()
    assert normalise_times(store.root.parent) == len(paths)
    for path in paths:
        status = path.stat()
        assert (status.st_atime_ns, status.st_mtime_ns) == (0, 0), path
        # ctime cannot be set: it is now the moment of normalising, for everything alike.
        assert status.st_ctime_ns >= before - 10_000_000, path


def test_a_deleted_body_stays_readable_to_whoever_opened_it(store: BlobStore) -> None:
    name = _write(store, b"y" * 5000)
    with store.open(name) as reader:
        store.delete(name)
        assert reader.read() == b"y" * 5000
    assert _bodies(store.root) == []


def test_a_restore_writes_under_the_name_rows_use(store: BlobStore) -> None:
    blob = store.create("ab" * 16)
    blob.file.write(b"restored")
    blob.commit()
    blob.release()
    with store.open("ab" * 16) as body:
        assert body.read() == b"restored"


def test_the_sweep_keeps_recorded_bodies_and_removes_unrecorded_ones(store: BlobStore) -> None:
    names = [_write(store) for _ in range(3)]
    assert store.sweep_abandoned(lambda: {names[0], names[2]}) == 1
    assert _bodies(store.root) == sorted([names[0], names[2]])


def test_the_sweep_leaves_a_body_whose_writer_has_not_recorded_it_yet(store: BlobStore) -> None:
    name, blob = store.begin()
    blob.file.write(b"z")
    blob.commit()
    assert store.sweep_abandoned(set) == 0
    assert _bodies(store.root) == [name]
    blob.discard()


def test_a_writer_that_records_its_body_during_the_sweep_keeps_it(store: BlobStore) -> None:
    name, blob = store.begin()
    blob.file.write(b"z")
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
    assert _bodies(store.root) == [name]


def test_a_writer_killed_mid_body_leaves_only_what_the_sweep_removes(store: BlobStore) -> None:
    child, name = _writer(store.root, "write")
    assert store.sweep_abandoned(set) == 0  # alive: its lock keeps it
    _kill(child)
    assert _bodies(store.root) == [name]
    assert store.sweep_abandoned(set) == 1
    assert _bodies(store.root) == []


def test_a_body_committed_by_a_live_writer_in_another_process_survives_the_sweep(store: BlobStore) -> None:
    child, name = _writer(store.root, "commit")
    try:
        assert store.sweep_abandoned(set) == 0
        assert _bodies(store.root) == [name]
    finally:
        _kill(child)
    # The writer died before recording it: now it goes.
    assert store.sweep_abandoned(set) == 1
    assert _bodies(store.root) == []


def test_a_body_released_by_its_writer_is_kept_while_recorded(store: BlobStore) -> None:
    child, name = _writer(store.root, "commit")
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("release\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "released"
    try:
        assert store.sweep_abandoned(lambda: {name}) == 0
        assert _bodies(store.root) == [name]
    finally:
        _kill(child)


def test_bodies_and_slots_are_private_to_the_service(store: BlobStore) -> None:
    name = _write(store)
    modes = {p.stat().st_mode & 0o777 for p in store.root.rglob("*")}
    assert modes <= {0o600, 0o700}
    assert os.stat(store.root / name[:2] / name).st_mode & 0o777 == 0o600
