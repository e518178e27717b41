"""Batching a body iterator for Starlette: the same bytes, fewer and larger pieces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.web.downloads import batched, primed


@given(chunks=st.lists(st.binary(max_size=40), max_size=30), size=st.integers(min_value=1, max_value=100))
def test_batches_hold_the_same_bytes_and_only_the_last_is_short(chunks: list[bytes], size: int) -> None:
    pieces = list(batched(chunks, size))
    assert b"".join(pieces) == b"".join(chunks)
    assert all(len(piece) >= size for piece in pieces[:-1])
    assert len(pieces) <= len(chunks)


def test_a_batch_is_pulled_only_when_asked_for() -> None:
    pulled = []

    def chunks() -> Iterator[bytes]:
        for i in range(10):
            pulled.append(i)
            yield b"x" * 10

    pieces = batched(chunks(), 25)
    assert next(pieces) == b"x" * 30
    assert pulled == [0, 1, 2]


def test_primed_raises_the_first_pieces_error_at_once() -> None:
    def failing() -> Iterator[bytes]:
        raise ValueError("tampered")
        yield b""  # a generator: the error comes on the first next()

    with pytest.raises(ValueError, match="tampered"):
        primed(failing())


def test_primed_keeps_every_piece_and_survives_an_empty_body() -> None:
    assert list(primed(iter([b"a", b"b"]))) == [b"a", b"b"]
    assert b"".join(primed(iter([]))) == b""
