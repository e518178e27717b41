"""What an editor's source page shows, gathered in one place."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import SourceTag
from app.services import duplicates, replies, retention, submissions, triage
from app.storage import BlobStore


@dataclass(frozen=True)
class SourcePage:
    source_id: str
    designation: str
    status: str
    starred: bool
    hidden: bool
    assignee_id: str | None
    submissions: list[submissions.OpenedSubmission]
    replies: list[replies.OpenedReply]
    unreadable_replies: int
    notes: list[triage.OpenedNote]
    # (tag id, name) of the source's tags, and of every tag for the add form.
    tags: list[tuple[str, str]]
    all_tags: dict[str, str]
    # Item id to the other sources, (id, designation), holding the same file.
    duplicates: dict[str, list[tuple[str, str]]]
    editors: list[tuple[str, str]]
    deletion_day: dt.date | None

    @property
    def unreadable(self) -> int:
        """Items and replies on the page that did not open."""
        return self.unreadable_replies + sum(len(s.unreadable) for s in self.submissions)


def open_source_page(
    *,
    session: Session,
    store: BlobStore,
    source_id: str,
    newsroom_keys: crypto.NewsroomKeys,
    retention_days: int | None,
) -> SourcePage:
    """Decrypt a source's page in memory; opening it clears its unread count."""
    source = triage.get_source(session=session, source_id=source_id)
    triage.mark_opened(session=session, source=source)
    duplicates.fill_dup_tags(session=session, source_id=source.id, newsroom_keys=newsroom_keys)
    opened = submissions.open_source_submissions(
        session=session, store=store, source=source, newsroom_keys=newsroom_keys
    )
    sent, unreadable_replies = replies.replies_for_editor(
        session=session, store=store, source_id=source.id, newsroom_keys=newsroom_keys
    )
    all_tags = triage.tag_names(session=session, newsroom_keys=newsroom_keys)
    own = set(session.scalars(select(SourceTag.tag_id).where(SourceTag.source_id == source.id)))
    return SourcePage(
        source_id=source.id,
        designation=source.designation,
        status=source.status,
        starred=source.starred,
        hidden=source.hidden,
        assignee_id=source.assignee_id,
        submissions=opened,
        replies=sent,
        unreadable_replies=unreadable_replies,
        notes=triage.notes_for_source(session=session, source_id=source.id, newsroom_keys=newsroom_keys),
        tags=[(tid, name) for tid, name in all_tags.items() if tid in own],
        all_tags=all_tags,
        duplicates=duplicates.duplicates_for_source(session=session, source_id=source.id),
        editors=triage.editors_by_name(session),
        deletion_day=retention.deletion_day(
            last_submission_on=source.last_submission_on, status=source.status, retention_days=retention_days
        ),
    )
