"""The triage rules, called directly on a database: what each change accepts, refuses and audits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import SOURCE_STATUSES, AuditEntry, SourceTag, Tag
from app.services import keys, triage
from app.services.triage import ASSIGNEE_ME, ASSIGNEE_NONE, STATUS_ALL, InboxFilter, InvalidChange, SourceNotFound
from tests.support import Instance
from tests.support.inprocess import EditorFactory, MadeSource, SourceFactory

ACTOR = "ana"


def _audit(db: Session) -> list[tuple[str, str, str]]:
    # Sorted: entries keep no order within a day (random ids), so tests compare them as a multiset.
    return sorted((e.actor, e.action, e.target) for e in db.scalars(select(AuditEntry)))


def _newsroom_keys(db: Session, instance: Instance) -> crypto.NewsroomKeys:
    return keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)


def _add_tag(db: Session, instance: Instance, made: MadeSource, name: str) -> None:
    triage.add_tag(
        session=db,
        source=made.source,
        name=name,
        actor=ACTOR,
        newsroom_keys=_newsroom_keys(db, instance),
        newsroom_public_key=keys.active_public_key(db),
    )


def _inbox(db: Session, filters: InboxFilter, editor_id: str = "") -> list[str]:
    return [row.id for row in triage.list_sources(session=db, filters=filters, editor_id=editor_id, limit=50)]


def test_an_unknown_source_is_not_found(db: Session, make_source: SourceFactory) -> None:
    made = make_source()
    assert triage.get_source(session=db, source_id=made.id) is made.source
    with pytest.raises(SourceNotFound):
        triage.get_source(session=db, source_id="0" * 32)


def test_every_known_status_is_set_and_audited_once(db: Session, make_source: SourceFactory) -> None:
    made = make_source()
    assert made.source.status == "new"
    for status in SOURCE_STATUSES:
        triage.set_status(session=db, source=made.source, status=status, actor=ACTOR)
        assert made.source.status == status
    # Setting the status it already has changes nothing and writes nothing.
    triage.set_status(session=db, source=made.source, status=SOURCE_STATUSES[-1], actor=ACTOR)
    changed = [s for s in SOURCE_STATUSES if s != "new"]
    assert _audit(db) == sorted((ACTOR, f"status {s}", made.source.designation) for s in changed)


@pytest.mark.parametrize("status", ["", "deleted", "Verified", "all", "new "])
def test_an_unknown_status_is_refused_and_nothing_changes(db: Session, make_source: SourceFactory, status: str) -> None:
    made = make_source()
    with pytest.raises(InvalidChange):
        triage.set_status(session=db, source=made.source, status=status, actor=ACTOR)
    db.expire_all()
    assert made.source.status == "new"
    assert _audit(db) == []


def test_star_and_hide_are_audited_only_when_they_change(db: Session, make_source: SourceFactory) -> None:
    made = make_source()
    triage.set_starred(session=db, source=made.source, starred=True, actor=ACTOR)
    triage.set_starred(session=db, source=made.source, starred=True, actor=ACTOR)
    triage.set_hidden(session=db, source=made.source, hidden=True, actor=ACTOR)
    triage.set_hidden(session=db, source=made.source, hidden=False, actor=ACTOR)
    triage.set_starred(session=db, source=made.source, starred=False, actor=ACTOR)
    db.expire_all()
    assert (made.source.starred, made.source.hidden) == (False, False)
    actions = [action for _, action, _ in _audit(db)]
    assert actions == sorted(["star", "hide", "unhide", "unstar"])


def test_a_source_is_assigned_only_to_an_existing_editor(
    db: Session, make_source: SourceFactory, make_editor: EditorFactory
) -> None:
    made = make_source()
    editor = make_editor()
    before = _audit(db)
    with pytest.raises(InvalidChange):
        triage.assign(session=db, source=made.source, editor_id="c" * 32, actor=ACTOR)
    assert made.source.assignee_id is None
    triage.assign(session=db, source=made.source, editor_id=editor.id, actor=ACTOR)
    assert made.source.assignee_id == editor.id
    triage.assign(session=db, source=made.source, editor_id=None, actor=ACTOR)
    assert made.source.assignee_id is None
    assert _audit(db) == sorted(
        [*before, (ACTOR, "assign", made.source.designation), (ACTOR, "unassign", made.source.designation)]
    )


@pytest.mark.parametrize("name", ["", "   ", "x" * (triage.MAX_TAG_CHARS + 1)])
def test_an_empty_or_overlong_tag_is_refused(
    db: Session, instance: Instance, make_source: SourceFactory, name: str
) -> None:
    made = make_source()
    with pytest.raises(InvalidChange):
        _add_tag(db, instance, made, name)
    assert db.scalar(select(func.count()).select_from(Tag)) == 0
    assert _audit(db) == []


def test_a_tag_cannot_be_added_without_keys_to_compare_names(db: Session, make_source: SourceFactory) -> None:
    made = make_source()
    with pytest.raises(InvalidChange):
        triage.add_tag(
            session=db,
            source=made.source,
            name="leak",
            actor=ACTOR,
            newsroom_keys={},
            newsroom_public_key=keys.active_public_key(db),
        )
    assert db.scalar(select(func.count()).select_from(Tag)) == 0


def test_a_tag_name_is_sealed_and_reused_whatever_its_case(
    db: Session, instance: Instance, make_source: SourceFactory
) -> None:
    a, b = make_source("tip a"), make_source("tip b")
    longest = "x" * triage.MAX_TAG_CHARS
    # Decomposed accents: names are compared as NFC, ignoring case and surrounding space.
    _add_tag(db, instance, a, "  Lea\u0301k ")
    _add_tag(db, instance, b, "LEA\u0301K")
    _add_tag(db, instance, a, "le\u00e1k")  # already on a: no second link, no audit
    _add_tag(db, instance, a, longest)
    tags = list(db.scalars(select(Tag)))
    assert len(tags) == 2
    assert all("Leák".encode() not in tag.sealed_name for tag in tags)
    names = triage.tag_names(session=db, newsroom_keys=_newsroom_keys(db, instance))
    # The first spelling is the one kept, normalised and stripped.
    assert sorted(names.values()) == sorted(["Le\u00e1k", longest])
    assert db.scalar(select(func.count()).select_from(SourceTag)) == 3
    assert [action for _, action, _ in _audit(db)] == ["tag add"] * 3


def test_removing_a_tag_drops_it_once_no_source_carries_it(
    db: Session, instance: Instance, make_source: SourceFactory
) -> None:
    a, b = make_source("tip a"), make_source("tip b")
    _add_tag(db, instance, a, "shared")
    _add_tag(db, instance, b, "shared")
    (tag_id,) = db.scalars(select(Tag.id))
    triage.remove_tag(session=db, source=a.source, tag_id=tag_id, actor=ACTOR)
    assert db.get(Tag, tag_id) is not None
    triage.remove_tag(session=db, source=a.source, tag_id=tag_id, actor=ACTOR)  # not on a any more: nothing
    triage.remove_tag(session=db, source=b.source, tag_id=tag_id, actor=ACTOR)
    assert db.scalars(select(Tag)).all() == []
    assert [action for _, action, _ in _audit(db)] == ["tag add", "tag add", "tag remove", "tag remove"]


@pytest.mark.parametrize("text", ["", " \r\n\t ", "x" * (triage.MAX_NOTE_CHARS + 1)])
def test_an_empty_or_overlong_note_is_refused(db: Session, make_source: SourceFactory, text: str) -> None:
    made = make_source()
    with pytest.raises(InvalidChange):
        triage.add_note(
            session=db, source=made.source, text=text, author=ACTOR, newsroom_public_key=keys.active_public_key(db)
        )
    assert triage.notes_for_source(session=db, source_id=made.id, newsroom_keys={}) == []


def test_a_note_is_sealed_and_opens_only_with_the_newsroom_keys(
    db: Session, instance: Instance, make_source: SourceFactory
) -> None:
    made = make_source()
    text = "x" * (triage.MAX_NOTE_CHARS - 6) + "\r\nfirst"
    triage.add_note(
        session=db, source=made.source, text=f"  {text}\n", author=ACTOR, newsroom_public_key=keys.active_public_key(db)
    )
    (note,) = triage.notes_for_source(session=db, source_id=made.id, newsroom_keys=_newsroom_keys(db, instance))
    assert (note.author, note.text) == (ACTOR, text.replace("\r\n", "\n"))
    stranger = crypto.generate_keypair()
    (unopened,) = triage.notes_for_source(
        session=db, source_id=made.id, newsroom_keys={crypto.key_id(stranger.public): stranger}
    )
    assert unopened.text is None
    assert _audit(db) == [(ACTOR, "note add", made.source.designation)]


def test_opening_a_source_clears_its_unread_count(db: Session, make_source: SourceFactory) -> None:
    made = make_source("a message", files=[("a.txt", b"a"), ("b.txt", b"b")])
    assert made.source.unread == 3
    triage.mark_opened(session=db, source=made.source)
    db.expire_all()
    assert made.source.unread == 0


def test_inbox_filters_pick_exactly_their_sources(
    db: Session, make_source: SourceFactory, make_editor: EditorFactory
) -> None:
    me, other = make_editor(), make_editor()
    plain, spam, starred, mine, theirs = (make_source(f"tip {n}") for n in range(5))
    triage.set_status(session=db, source=spam.source, status="spam", actor=ACTOR)
    triage.set_starred(session=db, source=starred.source, starred=True, actor=ACTOR)
    triage.assign(session=db, source=mine.source, editor_id=me.id, actor=ACTOR)
    triage.assign(session=db, source=theirs.source, editor_id=other.id, actor=ACTOR)
    everyone = {s.id for s in (plain, spam, starred, mine, theirs)}

    assert set(_inbox(db, InboxFilter())) == everyone - {spam.id}
    assert set(_inbox(db, InboxFilter(status=STATUS_ALL))) == everyone
    assert _inbox(db, InboxFilter(status="spam")) == [spam.id]
    assert _inbox(db, InboxFilter(starred=True)) == [starred.id]
    assert _inbox(db, InboxFilter(assignee=ASSIGNEE_ME), editor_id=me.id) == [mine.id]
    assert _inbox(db, InboxFilter(assignee=other.id), editor_id=me.id) == [theirs.id]
    assert set(_inbox(db, InboxFilter(assignee=ASSIGNEE_NONE))) == {plain.id, starred.id}
