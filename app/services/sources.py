"""Sources coming back: codename login."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import Source


def find_source(
    *, session: Session, codename: str, pepper: bytes, kdf: crypto.KdfParams
) -> tuple[Source, crypto.KeyPair] | None:
    """The source a codename belongs to, with its reply keypair; None if unknown.

    An unknown codename costs the same Argon2id run as a known one.
    """
    try:
        keys = crypto.derive_source_keys(codename, pepper, kdf)
    except crypto.InputTooLongError:
        return None
    source = session.scalars(select(Source).where(Source.lookup_id == keys.lookup_id)).first()
    if source is None:
        return None
    return source, keys.reply
