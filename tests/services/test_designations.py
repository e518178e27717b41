"""Every source has a designation of its own, however many there are."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.codenames import _ADJECTIVES, _NOUNS
from app.db.models import Source
from app.services.submissions import unused_designation


def _add_source(db: Session, designation: str) -> None:
    today = utc_today()
    db.add(
        Source(
            id=secrets.token_hex(16),
            lookup_id=secrets.token_bytes(32),
            reply_public_key=secrets.token_bytes(32),
            designation=designation,
            created_on=today,
            last_submission_on=today,
        )
    )


def test_three_hundred_sources_never_share_a_designation(db: Session) -> None:
    # Drawn at random from 4,060 pairs, 300 designations collide with a probability above 99.99 %.
    for _ in range(300):
        _add_source(db, unused_designation(db))
        db.flush()
    assert db.scalar(select(func.count(func.distinct(Source.designation)))) == 300


def test_when_every_pair_is_taken_a_number_keeps_them_apart(db: Session) -> None:
    pairs = [f"{a} {n}" for a in _ADJECTIVES for n in _NOUNS]
    for pair in pairs:
        _add_source(db, pair)
    db.flush()
    first = unused_designation(db)
    _add_source(db, first)
    db.flush()
    second = unused_designation(db)
    assert first not in pairs
    assert first.rsplit(" ", 1)[1] == "2"
    assert second != first
