"""Flagging a file identical to one in another tip (docs/crypto.md, "Duplicate tags").

The ingest path holds no secret key, so tags are filled in while an editor is
logged in, a bounded batch per source-page view.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import Item, NewsroomKey, Source, Submission

MAX_TAGS_PER_VIEW = 2000


def oldest_key_id(session: Session) -> bytes | None:
    """The key id of nsk_0: earliest ``created_on``, then lowest key id."""
    query = select(NewsroomKey.key_id).order_by(NewsroomKey.created_on, NewsroomKey.key_id).limit(1)
    found = session.scalars(query).first()
    return None if found is None else bytes.fromhex(found)


def fill_dup_tags(
    *,
    session: Session,
    source_id: str,
    newsroom_keys: crypto.NewsroomKeys,
    limit: int = MAX_TAGS_PER_VIEW,
) -> int:
    """Tag up to ``limit`` untagged files, this source's first; return how many."""
    oldest = oldest_key_id(session)
    keypair = None if oldest is None else newsroom_keys.get(oldest)
    if keypair is None or limit <= 0:
        return 0
    key = crypto.dedup_key(keypair.secret)
    # Only capsules this session can open: others would stay untagged and,
    # picked first every time, starve the rest.
    readable = func.substr(Item.capsule, 2, crypto.KEY_ID_SIZE).in_(list(newsroom_keys))
    untagged = (
        select(Item)
        .join(Submission, Submission.id == Item.submission_id)
        .where(Item.kind == "file", Item.dup_tag.is_(None), readable)
    )
    items = list(session.scalars(untagged.where(Submission.source_id == source_id).limit(limit)))
    if len(items) < limit:
        others = untagged.where(Submission.source_id != source_id).limit(limit - len(items))
        items += session.scalars(others)
    tagged = 0
    for item in items:
        try:
            data_key = crypto.open_capsule(item.capsule, newsroom_keys)
            metadata = crypto.open_metadata(data_key, item.sealed_metadata, owner=item.submission_id, kind=item.kind)
            item.dup_tag = crypto.dup_tag(key, metadata.sha256)
        except crypto.DecryptionError:
            continue
        tagged += 1
    if tagged:
        session.commit()
    return tagged


def duplicates_for_source(*, session: Session, source_id: str) -> dict[str, list[tuple[str, str]]]:
    """For each of the source's tagged files, the other sources (id, designation) holding the same file."""
    rows = session.execute(
        select(Item.id, Item.dup_tag)
        .join(Submission, Submission.id == Item.submission_id)
        .where(Submission.source_id == source_id, Item.dup_tag.is_not(None))
    )
    # A Result has .keys(), so dict(result) would take it for a mapping.
    mine = {item_id: tag for item_id, tag in rows if tag is not None}
    if not mine:
        return {}
    elsewhere = session.execute(
        select(Item.dup_tag, Source.id, Source.designation)
        .join(Submission, Submission.id == Item.submission_id)
        .join(Source, Source.id == Submission.source_id)
        .where(Item.dup_tag.in_(set(mine.values())), Source.id != source_id)
        .distinct()
    )
    by_tag: dict[bytes, list[tuple[str, str]]] = {}
    for tag, other_id, designation in elsewhere:
        if tag is None:
            continue
        by_tag.setdefault(tag, []).append((other_id, designation))
    return {item_id: sorted(by_tag[tag], key=lambda s: s[1]) for item_id, tag in mine.items() if tag in by_tag}
