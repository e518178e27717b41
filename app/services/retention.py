"""Automatic deletion of sources inactive for ``retention_days``.

A source is due once ``retention_days`` have passed since its last
submission: on day ``last_submission_on + retention_days`` (UTC). Sources
whose status is "published" are kept: the newsroom may need the material to
stand behind a published story, and setting that status is a deliberate
editorial act. Every other status, spam included, is deleted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.db.models import Source
from app.services import custody, deletion
from app.storage import BlobStore

ACTOR = "(retention)"
KEPT_STATUSES = ("published",)
_BATCH = 200


@dataclass(frozen=True)
class UpcomingDeletion:
    day: dt.date
    count: int


def deletion_day(*, last_submission_on: dt.date, status: str, retention_days: int | None) -> dt.date | None:
    """The day retention deletes a source, or None if it never will."""
    if retention_days is None or status in KEPT_STATUSES:
        return None
    return last_submission_on + dt.timedelta(days=retention_days)


def upcoming(
    *, session: Session, retention_days: int, warning_days: int, today: dt.date | None = None
) -> list[UpcomingDeletion]:
    """How many sources retention will delete on each of the next ``warning_days`` days."""
    today = today or utc_today()
    first = today - dt.timedelta(days=retention_days)
    last = first + dt.timedelta(days=warning_days)
    rows = session.execute(
        select(Source.last_submission_on, func.count())
        .where(
            Source.last_submission_on > first,
            Source.last_submission_on <= last,
            Source.status.not_in(KEPT_STATUSES),
        )
        .group_by(Source.last_submission_on)
        .order_by(Source.last_submission_on)
    )
    return [UpcomingDeletion(day + dt.timedelta(days=retention_days), count) for day, count in rows]


def apply_retention(*, session: Session, store: BlobStore, retention_days: int, today: dt.date | None = None) -> int:
    """Delete every source that is due; return how many were deleted."""
    cutoff = (today or utc_today()) - dt.timedelta(days=retention_days)
    due = select(Source.id).where(Source.last_submission_on <= cutoff, Source.status.not_in(KEPT_STATUSES))
    deleted = 0
    while batch := list(session.scalars(due.limit(_BATCH))):
        custody.record_retention(session, batch)
        deleted += deletion.delete_sources(session=session, store=store, source_ids=batch, actor=ACTOR)
    return deleted
