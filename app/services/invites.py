"""One-time enrolment links for new editors. Only a hash of each token is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import errors
from app.clock import utc_today
from app.db.models import Editor, Invite
from app.services import audit, editors
from app.services.editors import is_valid_username

INVITE_DAYS = 3


class InviteRefused(errors.InvalidInput):
    """The username is malformed or taken; the message says which."""


class InviteInvalid(errors.NotFound):
    """No such invite, or it expired, was used, or its username was taken meanwhile."""


def _hash(token: str) -> bytes:
    # The token carries 256 random bits, so a plain hash is enough to make a
    # stolen database useless for redeeming invites.
    return hashlib.sha256(token.encode("ascii", errors="replace")).digest()


def create_invite(*, session: Session, username: str, is_admin: bool, actor: str) -> str:
    """Create an invite and return its token, which is shown once and never stored."""
    username = username.strip()
    if not is_valid_username(username):
        raise InviteRefused("A username has 1 to 64 printable characters.")
    taken = session.scalars(select(Editor.id).where(Editor.username == username)).first()
    if taken is not None:
        raise InviteRefused(f"An editor named {username!r} already exists.")
    session.execute(delete(Invite).where(Invite.username == username))  # a new link replaces an old one
    token = secrets.token_urlsafe(32)
    session.add(
        Invite(
            token_hash=_hash(token),
            username=username,
            is_admin=is_admin,
            expires_on=utc_today() + dt.timedelta(days=INVITE_DAYS),
        )
    )
    audit.record(session, actor=actor, action="invited editor", target=username)
    session.commit()
    return token


def find_invite(*, session: Session, token: str) -> Invite | None:
    if not token or len(token) > 64:
        return None
    invite = session.get(Invite, _hash(token))
    if invite is None or invite.expires_on < utc_today():
        return None
    return invite


def get_invite(*, session: Session, token: str) -> Invite:
    invite = find_invite(session=session, token=token)
    if invite is None:
        raise InviteInvalid()
    return invite


def redeem_invite(*, session: Session, token: str, pending: editors.PendingEnrolment, otp: str) -> Editor:
    """Create the invited editor if ``otp`` proves the pending TOTP secret, and use up the invite.

    Raises LoginFailed for a wrong code (the invite stays), InviteInvalid if
    the invite is gone or its username was taken since it was sent.
    """
    invite = get_invite(session=session, token=token)
    try:
        editor = editors.complete_enrolment(
            session=session, username=invite.username, is_admin=invite.is_admin, pending=pending, otp=otp
        )
    except editors.EditorExists as e:
        raise InviteInvalid() from e
    session.delete(invite)
    session.commit()
    return editor


def pending_invites(session: Session) -> list[Invite]:
    return list(session.scalars(select(Invite).where(Invite.expires_on >= utc_today()).order_by(Invite.username)))


def cancel_invite(*, session: Session, username: str, actor: str) -> None:
    if not is_valid_username(username.strip()):
        # No invite can carry such a name; and PostgreSQL refuses a NUL in a query with an error.
        return
    session.execute(delete(Invite).where(Invite.username == username))
    audit.record(session, actor=actor, action="cancelled invite", target=username)
    session.commit()
