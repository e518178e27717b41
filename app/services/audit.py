"""The audit log of editor and admin actions: who, what, which day. Never content."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.db.models import AuditEntry

CLI_ACTOR = "(command line)"


def record(session: Session, *, actor: str, action: str, target: str = "") -> None:
    """Add an entry to the session's transaction; the caller commits it with the change."""
    session.add(AuditEntry(day=utc_today(), actor=actor, action=action, target=target[:120]))


def recent(session: Session, *, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    # Newest day first; within a day the random ids give no order, as none is kept.
    query = select(AuditEntry).order_by(AuditEntry.day.desc(), AuditEntry.id).limit(limit).offset(offset)
    return list(session.scalars(query))
