"""Every login attempt runs the KDF once per parameter set in use (issue 11, section 6).

Timing is not measured here (bench/login_timing.py does, as ratios); what is
checked is the work each attempt does, which is what its time follows: the
same Argon2id runs, whether the name is unknown, or an account's key was
wrapped under the current parameters or under older ones.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.orm import Session

from app import crypto
from app.services import editors
from tests.support import Instance

CURRENT = crypto.KdfParams(time_cost=2, memory_kib=8)


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[crypto.KdfParams]:
    """The parameters of every unwrap, recorded while the real unwrap runs."""
    runs: list[crypto.KdfParams] = []
    real = crypto.unwrap_secret_key

    def recording(wrapped: bytes, passphrase: str) -> crypto.KeyPair:
        runs.append(crypto.wrapped_key_params(wrapped))
        return real(wrapped, passphrase)

    monkeypatch.setattr(crypto, "unwrap_secret_key", recording)
    return runs


def _attempt(authenticator: editors.Authenticator, db: Session, username: str, passphrase: str) -> None:
    with pytest.raises(editors.LoginFailed):
        authenticator.login(session=db, username=username, passphrase=passphrase, otp="000000")
    db.rollback()


def test_unknown_names_and_accounts_of_every_parameter_set_cost_the_same(
    db: Session, instance: Instance, argon2_runs: list[crypto.KdfParams]
) -> None:
    old = instance.add_editor("ana")  # wrapped under the suite's fast parameters
    older = instance.settings.editor_kdf
    assert older != CURRENT
    authenticator = editors.Authenticator(CURRENT)  # the newsroom raised its parameters since
    argon2_runs.clear()
    costs = {}
    for label, username, passphrase in [
        ("unknown name", "nobody", "a passphrase of some length"),
        ("old account, wrong passphrase", "ana", "not ana's passphrase at all"),
        ("old account, right passphrase, wrong code", "ana", old.passphrase),
    ]:
        _attempt(authenticator, db, username, passphrase)
        costs[label] = Counter(argon2_runs)
        argon2_runs.clear()
    assert set(map(frozenset, (c.items() for c in costs.values()))) == {frozenset({(older, 1), (CURRENT, 1)})}, costs


def test_with_one_parameter_set_an_attempt_runs_the_kdf_once(
    db: Session, instance: Instance, argon2_runs: list[crypto.KdfParams]
) -> None:
    instance.add_editor("bea")
    authenticator = editors.Authenticator(instance.settings.editor_kdf)
    argon2_runs.clear()
    _attempt(authenticator, db, "nobody", "a passphrase of some length")
    _attempt(authenticator, db, "bea", "not bea's passphrase either")
    assert argon2_runs == [instance.settings.editor_kdf] * 2
