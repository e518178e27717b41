"""Deletions that need a second admin: one coerced or hostile account cannot destroy evidence alone.

When the newsroom has more than one admin holding the key (and the setting is
on, as it is by default), deleting a source or an editor is only asked for;
it happens when a different admin approves. A request names the day only,
like every row, and lapses after APPROVAL_DAYS.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import errors
from app.clock import utc_today
from app.db.models import Approval, Editor, KeyGrant, NewsroomKey, Source
from app.evidence.custody import DELETED
from app.services import audit, custody, deletion, editors
from app.storage import BlobStore

DELETE_SOURCE = "delete source"
DELETE_EDITOR = "delete editor"
APPROVAL_DAYS = 7


class ApprovalNotFound(errors.NotFound):
    """No such request, or one that lapsed."""


class SecondAdminNeeded(errors.Forbidden):
    """Only an admin other than the one who asked may approve."""


@dataclass(frozen=True)
class Actor:
    editor_id: str
    username: str
    is_admin: bool


@dataclass(frozen=True)
class PendingApproval:
    id: str
    action: str
    target: str  # a source's designation or an editor's username
    requested_by: str
    requester_id: str
    requested_on: dt.date


def second_admin_needed(session: Session, *, enabled: bool) -> bool:
    """True when the setting is on and more than one enabled admin holds the active key."""
    if not enabled:
        return False
    active = select(NewsroomKey.key_id).where(NewsroomKey.active).scalar_subquery()
    holders = (
        select(func.count(func.distinct(Editor.id)))
        .join(KeyGrant, KeyGrant.editor_id == Editor.id)
        .where(Editor.is_admin, ~Editor.disabled, KeyGrant.key_id == active)
    )
    return (session.scalar(holders) or 0) > 1


def _label(session: Session, action: str, target_id: str) -> str | None:
    if action == DELETE_SOURCE:
        source = session.get(Source, target_id)
        return source.designation if source else None
    editor = session.get(Editor, target_id)
    return editor.username if editor else None


def request(session: Session, *, action: str, target_id: str, by: Actor) -> None:
    """Ask for ``action`` on ``target_id``; asking twice for the same thing is one request."""
    label = _label(session, action, target_id)
    if label is None:
        raise ApprovalNotFound()
    exists = select(Approval.id).where(Approval.action == action, Approval.target_id == target_id)
    if session.scalar(exists) is None:
        session.add(Approval(action=action, target_id=target_id, requested_by=by.editor_id, requested_on=utc_today()))
        audit.record(session, actor=by.username, action=f"asked to {action}", target=label)
    session.commit()


def _drop_lapsed(session: Session) -> None:
    cutoff = utc_today() - dt.timedelta(days=APPROVAL_DAYS)
    session.execute(delete(Approval).where(Approval.requested_on < cutoff))


def pending(session: Session) -> list[PendingApproval]:
    _drop_lapsed(session)
    session.commit()
    found = []
    for approval, requester in session.execute(
        select(Approval, Editor).join(Editor, Editor.id == Approval.requested_by)
    ):
        label = _label(session, approval.action, approval.target_id)
        if label is not None:
            found.append(
                PendingApproval(
                    approval.id, approval.action, label, requester.username, requester.id, approval.requested_on
                )
            )
    return sorted(found, key=lambda p: (p.requested_on, p.action, p.target))


def approve(
    session: Session, store: BlobStore, *, approval_id: str, by: Actor, handling: custody.Handling | None = None
) -> str:
    """Carry out a request as ``by``, a second admin; return its action.

    With ``handling`` (the approving admin's session), a source's items get
    their custody tombstones, signed by the admin who carried the deletion out.
    """
    _drop_lapsed(session)
    approval = session.get(Approval, approval_id)
    if approval is None:
        session.commit()
        raise ApprovalNotFound()
    if not by.is_admin or approval.requested_by == by.editor_id:
        raise SecondAdminNeeded()
    action, target_id = approval.action, approval.target_id
    label = _label(session, action, target_id) or ""
    session.delete(approval)
    audit.record(session, actor=by.username, action=f"approved: {action}", target=label)
    if action == DELETE_SOURCE:
        if handling is not None:
            custody.record_for_source(session, handling, target_id, DELETED, commit=False)
        deletion.delete_sources(session=session, store=store, source_ids=[target_id], actor=by.username)
    elif target_id != by.editor_id:
        editors.delete_editor(session=session, editor_id=target_id, actor=by.username)
    session.commit()
    return action


def withdraw(session: Session, *, approval_id: str, by: Actor) -> None:
    """Drop a request: its requester may, and so may any admin."""
    approval = session.get(Approval, approval_id)
    if approval is None:
        raise ApprovalNotFound()
    if not by.is_admin and approval.requested_by != by.editor_id:
        raise SecondAdminNeeded()
    label = _label(session, approval.action, approval.target_id) or ""
    session.delete(approval)
    audit.record(session, actor=by.username, action=f"withdrew: {approval.action}", target=label)
    session.commit()
