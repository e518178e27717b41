"""Triage of sources: the inbox, status, star, assignee, hiding, tags and notes.

Status, star, assignee and hiding are stored in the clear so the inbox can
filter in SQL (docs/crypto.md lists what they reveal). Tag names and notes are
newsroom records, sealed to the active newsroom key. Every change is audited
by who, what and which source, never by content.
"""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, delete, exists, select
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import utc_today
from app.db.models import SOURCE_STATUSES, Editor, Note, Source, SourceTag, Tag
from app.services import audit

MAX_TAG_CHARS = 40
MAX_NOTE_CHARS = 10_000
# The default inbox leaves spam out; "all" shows it too.
STATUS_ALL = "all"
ASSIGNEE_ME = "me"
ASSIGNEE_NONE = "none"
_ID_CHUNK = 500


class SourceNotFound(errors.NotFound):
    pass


class InvalidChange(errors.InvalidInput):
    """A status, tag, note or assignee the desk refuses; nothing was changed."""


@dataclass(frozen=True)
class InboxFilter:
    status: str = ""
    tag_id: str = ""
    assignee: str = ""
    starred: bool = False


@dataclass(frozen=True)
class InboxRow:
    id: str
    designation: str
    status: str
    starred: bool
    hidden: bool
    unread: int
    assignee: str | None
    tag_ids: tuple[str, ...]
    last_submission_on: dt.date


@dataclass(frozen=True)
class OpenedNote:
    id: str
    author: str
    created_on: dt.date
    # None when the session holds no key that opens it.
    text: str | None


# --- the inbox ---------------------------------------------------------------------

# The assignee's username is NULL for an unassigned source (outer join).
_InboxQuery = Select[str, str, str, bool, bool, int, dt.date, str]


def _inbox_query() -> _InboxQuery:
    return select(
        Source.id,
        Source.designation,
        Source.status,
        Source.starred,
        Source.hidden,
        Source.unread,
        Source.last_submission_on,
        Editor.username,
    ).outerjoin(Editor, Editor.id == Source.assignee_id)


def _rows(session: Session, query: _InboxQuery) -> list[InboxRow]:
    found = list(session.execute(query))
    # One query for the tags of the whole page, not one per source.
    tags: dict[str, list[str]] = {}
    page_ids = [row[0] for row in found]
    if page_ids:
        links = session.execute(select(SourceTag.source_id, SourceTag.tag_id).where(SourceTag.source_id.in_(page_ids)))
        for source_id, tag_id in links:
            tags.setdefault(source_id, []).append(tag_id)
    return [
        InboxRow(
            id=sid,
            designation=designation,
            status=status,
            starred=starred,
            hidden=hidden,
            unread=unread,
            assignee=assignee,
            tag_ids=tuple(sorted(tags.get(sid, ()))),
            last_submission_on=last,
        )
        for sid, designation, status, starred, hidden, unread, last, assignee in found
    ]


def list_sources(
    *, session: Session, filters: InboxFilter, editor_id: str, limit: int, offset: int = 0
) -> list[InboxRow]:
    """One page of the inbox, newest activity first, filtered in SQL on indexed columns."""
    # Pick the page's ids first, from the inbox-order index alone, then load
    # just those rows: deep pages skip index entries instead of joined rows.
    query = select(Source.id)
    if filters.status == "":
        query = query.where(Source.status != "spam")
    elif filters.status != STATUS_ALL:
        query = query.where(Source.status == filters.status)
    if filters.starred:
        query = query.where(Source.starred.is_(True))
    if filters.assignee == ASSIGNEE_NONE:
        query = query.where(Source.assignee_id.is_(None))
    elif filters.assignee:
        assignee_id = editor_id if filters.assignee == ASSIGNEE_ME else filters.assignee
        query = query.where(Source.assignee_id == assignee_id)
    if filters.tag_id:
        tagged = select(SourceTag.source_id).where(SourceTag.tag_id == filters.tag_id)
        query = query.where(Source.id.in_(tagged))
    inbox_order = (Source.last_submission_on.desc(), Source.id.desc())
    page = query.order_by(*inbox_order).limit(limit).offset(offset).subquery()
    return _rows(session, _inbox_query().where(Source.id.in_(select(page.c.id))).order_by(*inbox_order))


def rows_for_ids(*, session: Session, source_ids: Iterable[str], limit: int, offset: int = 0) -> list[InboxRow]:
    """Inbox rows for a set of sources (search results), in inbox order."""
    order: list[tuple[dt.date, str]] = []
    ids = list(source_ids)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        order += session.execute(select(Source.last_submission_on, Source.id).where(Source.id.in_(chunk)))
    order.sort(reverse=True)  # inbox order: newest day first, then id descending
    page = [sid for _, sid in order[offset : offset + limit]]
    if not page:
        return []
    rows = {row.id: row for row in _rows(session, _inbox_query().where(Source.id.in_(page)))}
    return [rows[sid] for sid in page if sid in rows]


def get_source(*, session: Session, source_id: str) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise SourceNotFound()
    return source


def mark_opened(*, session: Session, source: Source) -> None:
    """An editor opened the source's page: nothing of it is unread any more."""
    if source.unread:
        source.unread = 0
        session.commit()


def editors_by_name(session: Session) -> list[tuple[str, str]]:
    """(id, username) of every editor, for the assignee choices."""
    return list(session.execute(select(Editor.id, Editor.username).order_by(Editor.username)))


# --- status, star, assignee, hiding ---------------------------------------------------


def _change(session: Session, source: Source, actor: str, action: str) -> None:
    audit.record(session, actor=actor, action=action, target=source.designation)
    session.commit()


def set_status(*, session: Session, source: Source, status: str, actor: str) -> None:
    if status not in SOURCE_STATUSES:
        raise InvalidChange()
    if source.status != status:
        source.status = status
        _change(session, source, actor, f"status {status}")


def set_starred(*, session: Session, source: Source, starred: bool, actor: str) -> None:
    if source.starred != starred:
        source.starred = starred
        _change(session, source, actor, "star" if starred else "unstar")


def assign(*, session: Session, source: Source, editor_id: str | None, actor: str) -> None:
    if editor_id is not None and session.get(Editor, editor_id) is None:
        raise InvalidChange()
    if source.assignee_id != editor_id:
        source.assignee_id = editor_id
        _change(session, source, actor, "assign" if editor_id else "unassign")


def set_hidden(*, session: Session, source: Source, hidden: bool, actor: str) -> None:
    if source.hidden != hidden:
        source.hidden = hidden
        _change(session, source, actor, "hide" if hidden else "unhide")


# --- tags ----------------------------------------------------------------------------


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def tag_names(*, session: Session, newsroom_keys: crypto.NewsroomKeys) -> dict[str, str]:
    """Every tag this session can open, id to name, sorted by name."""
    names = {}
    for tag in session.scalars(select(Tag)):
        try:
            names[tag.id] = crypto.open_record(tag.sealed_name, newsroom_keys)
        except crypto.DecryptionError:
            continue
    return dict(sorted(names.items(), key=lambda pair: pair[1].casefold()))


def add_tag(
    *,
    session: Session,
    source: Source,
    name: str,
    actor: str,
    newsroom_keys: crypto.NewsroomKeys,
    newsroom_public_key: bytes,
) -> None:
    """Tag a source, reusing the tag whose (decrypted) name matches, ignoring case."""
    name = _clean(name)
    # Without keys the existing names cannot be compared, and a duplicate would be made.
    if not name or len(name) > MAX_TAG_CHARS or not newsroom_keys:
        raise InvalidChange()
    wanted = name.casefold()
    existing = tag_names(session=session, newsroom_keys=newsroom_keys)
    tag_id = next((tid for tid, tname in existing.items() if tname.casefold() == wanted), None)
    if tag_id is None:
        tag_id = secrets.token_hex(16)
        session.add(Tag(id=tag_id, sealed_name=crypto.seal_record(newsroom_public_key, name)))
        session.flush()
    if session.get(SourceTag, (source.id, tag_id)) is None:
        session.add(SourceTag(source_id=source.id, tag_id=tag_id))
        _change(session, source, actor, "tag add")


def remove_tag(*, session: Session, source: Source, tag_id: str, actor: str) -> None:
    link = session.get(SourceTag, (source.id, tag_id))
    if link is None:
        return
    session.delete(link)
    session.flush()
    delete_unused_tags(session)
    _change(session, source, actor, "tag remove")


def delete_unused_tags(session: Session) -> None:
    """Drop tags no source carries any more, so their sealed names go too."""
    used = exists().where(SourceTag.tag_id == Tag.id)
    session.execute(delete(Tag).where(~used))


# --- notes ---------------------------------------------------------------------------


def add_note(*, session: Session, source: Source, text: str, author: str, newsroom_public_key: bytes) -> None:
    text = text.replace("\r\n", "\n").strip()
    if not text or len(text) > MAX_NOTE_CHARS:
        raise InvalidChange()
    sealed = crypto.seal_record(newsroom_public_key, text)
    session.add(Note(source_id=source.id, author=author, sealed_text=sealed, created_on=utc_today()))
    _change(session, source, author, "note add")


def notes_for_source(*, session: Session, source_id: str, newsroom_keys: crypto.NewsroomKeys) -> list[OpenedNote]:
    opened = []
    for note in session.scalars(select(Note).where(Note.source_id == source_id).order_by(Note.created_on, Note.id)):
        try:
            text: str | None = crypto.open_record(note.sealed_text, newsroom_keys)
        except crypto.DecryptionError:
            text = None
        opened.append(OpenedNote(id=note.id, author=note.author, created_on=note.created_on, text=text))
    return opened
