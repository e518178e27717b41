"""Search over decrypted messages, file names and notes, in one editor session's memory.

Nothing is indexed on disk: the decrypted text is folded and cached in the
session's scratch dict (app/web/logins.py), so it is dropped at logout or expiry
and never shared between sessions. It is plaintext in process memory while
the session lives, like every page an editor reads (docs/crypto.md, last
section). Neither the query nor the text is ever logged.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto, errors
from app.db.models import Item, Note, Submission
from app.envelopes import read_body
from app.storage import BlobStore

MAX_QUERY_CHARS = 200
# Longer messages are searched by nothing but their (empty) name; they are
# read by download.
MAX_SEARCHED_MESSAGE_BYTES = 1024 * 1024
_SCRATCH_KEY = "search"
_CHUNK = 500
# Folded text one session keeps between searches. Beyond it, texts are decrypted,
# matched and dropped at each search: slower, never larger.
MAX_CACHED_CHARS = 16 * 1024 * 1024


class InvalidQuery(errors.InvalidInput):
    pass


@dataclass
class _Cache:
    # Keys are "i:<item id>" and "n:<note id>"; values (source id, folded text).
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    chars: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, key: str, source_id: str, text: str, limit: int) -> bool:
        """Cache ``text`` if it fits under ``limit`` characters in all; False if it does not."""
        if self.chars + len(text) > limit:
            return False
        self.texts[key] = (source_id, text)
        self.chars += len(text)
        return True

    def forget(self, key: str) -> None:
        _, text = self.texts.pop(key)
        self.chars -= len(text)


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _cache(scratch: dict[str, object]) -> _Cache:
    cache = scratch.get(_SCRATCH_KEY)
    if not isinstance(cache, _Cache):
        cache = _Cache()
        scratch[_SCRATCH_KEY] = cache
    return cache


def _item_text(item: Item, store: BlobStore, keys: crypto.NewsroomKeys) -> str:
    try:
        data_key = crypto.open_capsule(item.capsule, keys)
        metadata = crypto.open_metadata(data_key, item.sealed_metadata, owner=item.submission_id, kind=item.kind)
        if metadata.kind != "message":
            return metadata.name
        if metadata.size > MAX_SEARCHED_MESSAGE_BYTES:
            return ""
        return read_body(store, item.blob_name, data_key, metadata.size).decode("utf-8", errors="replace")
    except (crypto.DecryptionError, OSError):
        # Cached as empty: this session's keys will not open it later either.
        return ""


def _note_text(note: Note, keys: crypto.NewsroomKeys) -> str:
    try:
        return crypto.open_record(note.sealed_text, keys)
    except crypto.DecryptionError:
        return ""


def _refresh(
    cache: _Cache, session: Session, store: BlobStore, keys: crypto.NewsroomKeys, needle: str, limit: int
) -> set[str]:
    """Decrypt what the cache lacks and forget what was deleted since.

    Returns the sources matching ``needle`` among texts that did not fit in the cache.
    """
    current = {
        f"i:{item_id}": source_id
        for item_id, source_id in session.execute(
            select(Item.id, Submission.source_id).join(Submission, Submission.id == Item.submission_id)
        )
    }
    current.update({f"n:{nid}": sid for nid, sid in session.execute(select(Note.id, Note.source_id))})
    for gone in cache.texts.keys() - current.keys():
        cache.forget(gone)
    missing = [key for key in current if key not in cache.texts]
    item_ids = [key[2:] for key in missing if key.startswith("i:")]
    note_ids = [key[2:] for key in missing if key.startswith("n:")]
    overflow: set[str] = set()

    def found(key: str, source_id: str, text: str) -> None:
        folded = fold(text)
        if not cache.keep(key, source_id, folded, limit) and needle in folded:
            overflow.add(source_id)

    for start in range(0, len(item_ids), _CHUNK):
        for item in session.scalars(select(Item).where(Item.id.in_(item_ids[start : start + _CHUNK]))):
            found(f"i:{item.id}", current[f"i:{item.id}"], _item_text(item, store, keys))
    for start in range(0, len(note_ids), _CHUNK):
        for note in session.scalars(select(Note).where(Note.id.in_(note_ids[start : start + _CHUNK]))):
            found(f"n:{note.id}", note.source_id, _note_text(note, keys))
    return overflow


def search_sources(
    *,
    session: Session,
    store: BlobStore,
    scratch: dict[str, object],
    newsroom_keys: crypto.NewsroomKeys,
    query: str,
    max_cached_chars: int = MAX_CACHED_CHARS,
) -> set[str]:
    """Ids of the sources whose messages, file names or notes contain ``query``."""
    needle = fold(query.strip())
    if not needle or len(query) > MAX_QUERY_CHARS:
        raise InvalidQuery()
    cache = _cache(scratch)
    with cache.lock:
        overflow = _refresh(cache, session, store, newsroom_keys, needle, max_cached_chars)
        return overflow | {source_id for source_id, text in cache.texts.values() if needle in text}
