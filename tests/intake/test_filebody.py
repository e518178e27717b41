"""FileBody: what is held for stripping, when it streams instead, and that memory goes back."""

from __future__ import annotations

import errno
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import crypto
from app.intake.filebody import RESERVE_STEP, FileBody, FinishedFile, MemoryBudget, StripPolicy
from app.media.sandbox import Sandbox, SandboxLimits
from app.storage import BlobStore, PendingBlob
from tests.support import bodies_in

MAX = 4096
BUDGET = 2 * MAX


def _policy() -> StripPolicy:
    return StripPolicy(max_bytes=MAX, budget=MemoryBudget(BUDGET), sandbox=Sandbox(SandboxLimits()))


def _write(store: BlobStore, strip: StripPolicy | None, chunks: list[bytes]) -> FinishedFile:
    body = FileBody(store, strip)
    for chunk in chunks:
        body.write(memoryview(chunk))
    return body.finish()


def _content(store: BlobStore, done: FinishedFile) -> bytes:
    done.blob.commit()
    done.blob.release()
    with store.open(done.blob_name) as body:
        return b"".join(crypto.read_body(done.data_key, body, done.size))


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from([0, 1, MAX - 1, MAX, MAX + 1, 3 * MAX + 5]), cuts=st.lists(st.integers(0), max_size=6))
def test_held_or_streamed_the_content_is_kept_whole(tmp_path: Path, size: int, cuts: list[int]) -> None:
    data = bytes(i % 251 for i in range(size))  # no known type, nor text: stripping leaves it as sent
    strip = _policy()
    store = BlobStore(tmp_path)
    done = _write(store, strip, _split(data, cuts))
    assert _content(store, done) == data
    assert done.sanitised == ("too-large" if size > MAX else "unsupported" if size else "none-found")
    assert strip.budget.try_reserve(BUDGET)  # the whole budget is back


def test_without_stripping_nothing_is_held(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    done = _write(store, None, [b"x" * (MAX + 1)])
    assert done.sanitised == "not-requested"
    assert _content(store, done) == b"x" * (MAX + 1)


def test_a_discarded_body_gives_its_budget_back(tmp_path: Path) -> None:
    strip = _policy()
    body = FileBody(BlobStore(tmp_path), strip)
    body.write(b"y" * 100)
    assert not strip.budget.try_reserve(2 * MAX)  # the reservation is held while the file is buffered
    body.discard()
    assert strip.budget.try_reserve(BUDGET)


class _FillingStore(BlobStore):
    """A store whose disk fills up after ``room`` bytes of a body."""

    def __init__(self, root: Path, room: int) -> None:
        super().__init__(root)
        self._room = room

    def begin(self) -> tuple[str, PendingBlob]:
        name, blob = super().begin()
        write, left = blob.file.write, [self._room]

        def filling(data: bytes) -> int:
            left[0] -= len(data)
            if left[0] < 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(data)

        blob.file.write = filling  # type: ignore[method-assign, assignment]
        return name, blob


def test_a_full_disk_while_held_bytes_stream_out_raises_as_such_and_cleans_up(tmp_path: Path) -> None:
    held = 3 * crypto.CHUNK_SIZE
    strip = StripPolicy(max_bytes=held, budget=MemoryBudget(2 * held), sandbox=Sandbox(SandboxLimits()))
    body = FileBody(_FillingStore(tmp_path, room=1000), strip)
    body.write(b"x" * held)
    with pytest.raises(OSError, match="No space") as full:
        body.write(b"y")  # too large to strip: the held bytes are encrypted, and the disk is full
    body.discard()  # while the error and its traceback are still alive
    del full
    assert strip.budget.try_reserve(2 * held)
    assert bodies_in(tmp_path) == []


def test_memory_is_reserved_as_bytes_arrive_not_for_the_whole_file(tmp_path: Path) -> None:
    # Four uploads that sent 200 bytes each hold one small step each, not four whole files.
    budget = MemoryBudget(8 * RESERVE_STEP)
    strip = StripPolicy(max_bytes=64 * RESERVE_STEP, budget=budget, sandbox=Sandbox(SandboxLimits()))
    bodies = [FileBody(BlobStore(tmp_path), strip) for _ in range(4)]
    for body in bodies:
        body.write(b"z" * 200)
    assert not budget.try_reserve(1)  # 4 x 2 steps: all of it
    for body in bodies:
        body.discard()
    assert budget.try_reserve(8 * RESERVE_STEP)


def test_a_file_that_finds_the_budget_spent_is_kept_as_sent_without_waiting(tmp_path: Path) -> None:
    strip = _policy()
    store = BlobStore(tmp_path)
    holder = FileBody(store, strip)
    holder.write(b"h" * MAX)  # holds the whole budget
    done = _write(store, strip, [b"\xff\xd8\xff" + b"j" * 100])
    assert done.sanitised == "too-large"
    assert _content(store, done) == b"\xff\xd8\xff" + b"j" * 100
    holder.discard()
