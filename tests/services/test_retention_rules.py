"""The retention rules with an explicit today: which day each source goes, what goes on it, and the warnings."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import SOURCE_STATUSES, AuditEntry, Source
from app.services import retention
from app.services.retention import UpcomingDeletion
from app.storage import BlobStore
from tests.support import Instance, stored_files
from tests.support.inprocess import MadeSource, SourceFactory

TODAY = dt.date(2025, 3, 1)
DAYS = 30


def _ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def _in(days: int) -> dt.date:
    return TODAY + dt.timedelta(days=days)


def _source(db: Session, make_source: SourceFactory, *, last_submission_on: dt.date, status: str = "new") -> MadeSource:
    made = make_source(f"last sent on {last_submission_on}")
    made.source.last_submission_on = last_submission_on
    made.source.status = status
    db.commit()
    return made


def _remaining(db: Session) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(Source.id)))


def test_the_deletion_day_is_the_last_submission_plus_the_retention_days() -> None:
    day = dt.date(2024, 2, 20)
    assert retention.deletion_day(last_submission_on=day, status="new", retention_days=10) == dt.date(2024, 3, 1)
    assert retention.deletion_day(last_submission_on=day, status="spam", retention_days=1) == dt.date(2024, 2, 21)
    assert retention.deletion_day(last_submission_on=day, status="new", retention_days=366) == dt.date(2025, 2, 20)


@pytest.mark.parametrize("status", SOURCE_STATUSES)
def test_only_published_sources_and_instances_without_retention_are_kept_for_ever(status: str) -> None:
    day = dt.date(2024, 1, 1)
    expected = None if status == "published" else dt.date(2024, 1, 31)
    assert retention.deletion_day(last_submission_on=day, status=status, retention_days=30) == expected
    assert retention.deletion_day(last_submission_on=day, status=status, retention_days=None) is None


def test_retention_deletes_exactly_the_sources_past_their_day(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    due_today = _source(db, make_source, last_submission_on=_ago(DAYS))
    long_due = _source(db, make_source, last_submission_on=_ago(DAYS + 400), status="spam")
    due_tomorrow = _source(db, make_source, last_submission_on=_ago(DAYS - 1))
    published = _source(db, make_source, last_submission_on=_ago(DAYS + 400), status="published")
    fresh = _source(db, make_source, last_submission_on=TODAY)
    spared = {due_tomorrow.id, published.id, fresh.id}
    doomed = [due_today.source.designation, long_due.source.designation]

    assert retention.apply_retention(session=db, store=store, retention_days=DAYS, today=TODAY) == 2
    assert _remaining(db) == spared
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "source delete"))
    assert sorted((e.actor, e.target) for e in entries) == sorted((retention.ACTOR, name) for name in doomed)
    assert len(stored_files(instance.settings)) == 3  # one message each for the three spared

    # Run again the same day: nothing more is due.
    assert retention.apply_retention(session=db, store=store, retention_days=DAYS, today=TODAY) == 0
    # The next day, the one due tomorrow goes.
    assert retention.apply_retention(session=db, store=store, retention_days=DAYS, today=_in(1)) == 1
    assert _remaining(db) == {published.id, fresh.id}


def test_apply_retention_agrees_with_deletion_day(db: Session, store: BlobStore, make_source: SourceFactory) -> None:
    made = [
        _source(db, make_source, last_submission_on=_ago(days), status=status)
        for days, status in ((0, "new"), (7, "verified"), (8, "published"), (8, "rejected"), (9, "in-review"))
    ]
    days = 8
    expected = set()
    for m in made:
        day = retention.deletion_day(
            last_submission_on=m.source.last_submission_on, status=m.source.status, retention_days=days
        )
        if day is None or day > TODAY:
            expected.add(m.id)
    retention.apply_retention(session=db, store=store, retention_days=days, today=TODAY)
    assert _remaining(db) == expected
    assert len(expected) == 3


def test_upcoming_counts_the_deletions_of_each_day_in_the_warning_window(
    db: Session, make_source: SourceFactory
) -> None:
    warning_days = 7
    for days_left, status in (
        (0, "new"),  # due today: retention's next run takes it, no warning
        (1, "new"),
        (1, "spam"),
        (1, "published"),  # never deleted, never announced
        (3, "verified"),
        (warning_days, "new"),  # the last day of the window
        (warning_days + 1, "new"),  # beyond it
    ):
        _source(db, make_source, last_submission_on=_ago(DAYS - days_left), status=status)

    found = retention.upcoming(session=db, retention_days=DAYS, warning_days=warning_days, today=TODAY)
    assert found == [UpcomingDeletion(_in(1), 2), UpcomingDeletion(_in(3), 1), UpcomingDeletion(_in(warning_days), 1)]
    assert retention.upcoming(session=db, retention_days=DAYS, warning_days=0, today=TODAY) == []
    later = retention.upcoming(session=db, retention_days=DAYS, warning_days=warning_days, today=_in(2))
    assert [u.day for u in later] == [_in(3), _in(warning_days), _in(warning_days + 1)]
