"""Every envelope fuzz target, briefly; ``python -m tests.fuzz.envelopes`` runs them at length."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import envelopes

PROGRAMS = st.one_of(
    st.binary(min_size=5, max_size=21),
    st.binary(max_size=300).map(lambda raw: b"\xff" + raw),
)


@pytest.mark.parametrize("name", sorted(envelopes.TARGETS))
def test_fuzz_target_holds(name: str) -> None:
    run = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(PROGRAMS)(envelopes.TARGETS[name])
    )
    run()


@pytest.mark.parametrize("name", sorted(set(envelopes.TARGETS) - {"recovery-secret"}))
def test_an_empty_program_keeps_the_original_which_opens(name: str) -> None:
    # No edit: the target's own "it opened" branch must accept the untouched original.
    envelopes.TARGETS[name](b"")


def test_the_original_bundle_decrypts_to_the_expected_files() -> None:
    envelopes.target_bundle(b"")
    world = envelopes.world()
    assert envelopes.mutate(world.bundle, b"") == world.bundle.original
