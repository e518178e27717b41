"""The audit log of editor and admin actions: who, what, which day. Never content."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.db.models import AuditEntry, Item, Source, Submission

CLI_ACTOR = "(command line)"


def record(session: Session, *, actor: str, action: str, target: str = "") -> None:
    """Add an entry to the session's transaction; the caller commits it with the change."""
    session.add(AuditEntry(day=utc_today(), actor=actor, action=action, target=target[:120]))


def record_read(session: Session, *, actor: str, action: str, target: str = "") -> bool:
    """A read, on the record like a change: once per editor, action, target and day, and committed.

    Never what was read or searched for: a search is "search", with no target.
    True if this was the first such read of the day.
    """
    entry = AuditEntry(day=utc_today(), actor=actor, action=action, target=target[:120])
    seen = select(AuditEntry.id).where(
        AuditEntry.day == entry.day,
        AuditEntry.actor == entry.actor,
        AuditEntry.action == entry.action,
        AuditEntry.target == entry.target,
    )
    if session.scalars(seen).first() is not None:
        return False
    session.add(entry)
    session.commit()
    return True


def item_target(session: Session, item_id: str) -> str:
    """The designation of the source an item belongs to, as audit entries name it."""
    query = select(Source.designation).join(Submission).join(Item).where(Item.id == item_id)
    return session.scalars(query).first() or ""


def recent(session: Session, *, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    # Newest day first; within a day the random ids give no order, as none is kept.
    query = select(AuditEntry).order_by(AuditEntry.day.desc(), AuditEntry.id).limit(limit).offset(offset)
    return list(session.scalars(query))
