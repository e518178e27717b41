"""Database tables. They hold data only: public keys, wrapped keys and ciphertext.

No column stores an exact time, an address or any plaintext of a tip; the only
dates are UTC days, and row ids are random so they carry no order. On SQLite
every table is WITHOUT ROWID: a hidden rowid would keep the order of arrival
that the random keys hide (docs/threat-model.md).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NO_ROWID: dict[str, object] = {"sqlite_with_rowid": False}


class Base(DeclarativeBase):
    __table_args__: dict[str, object] | tuple[object, ...] = NO_ROWID


def random_id() -> str:
    return secrets.token_hex(16)


class Instance(Base):
    """The single row of installation-wide parameters."""

    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    codename_kdf_time_cost: Mapped[int] = mapped_column(Integer)
    codename_kdf_memory_kib: Mapped[int] = mapped_column(Integer)
    codename_kdf_parallelism: Mapped[int] = mapped_column(Integer)
    # Public, so new newsroom keys can be sealed for recovery without the secret.
    recovery_public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    # The instance key (docs/evidence.md, "Keys"): Ed25519, its seed sealed to a newsroom key.
    signing_public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    sealed_signing_seed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class NewsroomKey(Base):
    __tablename__ = "newsroom_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    recovery_grant: Mapped[bytes] = mapped_column(LargeBinary(80))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_on: Mapped[dt.date] = mapped_column(Date)


class Editor(Base):
    __tablename__ = "editors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    wrapped_secret_key: Mapped[bytes] = mapped_column(LargeBinary(98))
    # The TOTP secret and the last step a code was accepted for, sealed to the
    # editor's key (docs/crypto.md): no clear column dates a login.
    sealed_totp_secret: Mapped[bytes] = mapped_column(LargeBinary(128))
    created_on: Mapped[dt.date] = mapped_column(Date)
    # Bumped on revocation and passphrase changes: sessions from an older epoch end.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # Set on revocation: the account can no longer log in, and no login of it is honoured.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The editor's Ed25519 key for custody entries (docs/evidence.md): the seed sealed to
    # their own key, made at their first login since evidence records existed.
    signing_public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    sealed_signing_seed: Mapped[bytes | None] = mapped_column(LargeBinary(80), default=None)

    grants: Mapped[list[KeyGrant]] = relationship(back_populates="editor", cascade="all, delete-orphan")


class KeyGrant(Base):
    """A newsroom secret key sealed to one editor's public key."""

    __tablename__ = "key_grants"

    editor_id: Mapped[str] = mapped_column(ForeignKey("editors.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("newsroom_keys.key_id"), primary_key=True)
    sealed_secret_key: Mapped[bytes] = mapped_column(LargeBinary(80))

    editor: Mapped[Editor] = relationship(back_populates="grants")


class Invite(Base):
    """A one-time enrolment link. Only a hash of its token is stored."""

    __tablename__ = "invites"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_on: Mapped[dt.date] = mapped_column(Date)


SOURCE_STATUSES = ("new", "in-review", "verifying", "verified", "published", "rejected", "spam")


class Source(Base):
    __tablename__ = "sources"
    # The inbox's order: newest activity first, id to break ties. One index
    # serves every page, so deep pages walk the index instead of sorting.
    # Status rides along so the default filter (all but spam) needs no row lookups.
    __table_args__ = (Index("ix_sources_inbox_order", "last_submission_on", "id", "status"), NO_ROWID)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    lookup_id: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    reply_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    designation: Mapped[str] = mapped_column(String(80))
    created_on: Mapped[dt.date] = mapped_column(Date)
    last_submission_on: Mapped[dt.date] = mapped_column(Date, index=True)
    # Triage, in the clear so the inbox can filter 100,000 sources in SQL; the
    # threat model in docs/crypto.md lists what these reveal.
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    starred: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    assignee_id: Mapped[str | None] = mapped_column(
        ForeignKey("editors.id", ondelete="SET NULL"), index=True, default=None
    )
    # A hidden (abusive) source's new submissions go straight to spam.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    unread: Mapped[int] = mapped_column(Integer, default=0)

    submissions: Mapped[list[Submission]] = relationship(back_populates="source", cascade="all, delete-orphan")
    tags: Mapped[list[Tag]] = relationship(secondary="source_tags")


class Tag(Base):
    """A label editors put on sources; its name is a sealed newsroom record."""

    __tablename__ = "tags"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed_name: Mapped[bytes] = mapped_column(LargeBinary)


class SourceTag(Base):
    __tablename__ = "source_tags"

    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[str] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)


class Note(Base):
    """An editor's internal note on a source, sealed to the newsroom key."""

    __tablename__ = "notes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    sealed_text: Mapped[bytes] = mapped_column(LargeBinary)
    created_on: Mapped[dt.date] = mapped_column(Date)


class Submission(Base):
    """One POST of the submission form: a message and any number of files."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    created_on: Mapped[dt.date] = mapped_column(Date)

    source: Mapped[Source] = relationship(back_populates="submissions")
    items: Mapped[list[Item]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="Item.position"
    )


class Item(Base):
    """One envelope: a message or a file. The body lives in the ciphertext store."""

    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    capsule: Mapped[bytes] = mapped_column(LargeBinary(89))
    sealed_metadata: Mapped[bytes] = mapped_column(LargeBinary(1065))
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    body_size: Mapped[int] = mapped_column(BigInteger)
    # Keyed hash of the plaintext's SHA-256 (docs/crypto.md, "Duplicate tags"),
    # filled in while an editor is logged in.
    dup_tag: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True, default=None)
    # The intake receipt, sealed under the envelope's data key (docs/evidence.md); None for
    # items received before receipts existed.
    sealed_receipt: Mapped[bytes | None] = mapped_column(LargeBinary(809), default=None)
    # The link of the newest custody entry about this item, which the next one names.
    custody_link: Mapped[str | None] = mapped_column(String(64), default=None)
    # The receipt's commitment: salted, so it tells nothing of the content, and it lets the
    # server write a retention tombstone without any key (docs/evidence.md).
    commitment: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)

    submission: Mapped[Submission] = relationship(back_populates="items")


class Reply(Base):
    """A newsroom reply: one body, its key sealed to the source and to the newsroom."""

    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    source_capsule: Mapped[bytes] = mapped_column(LargeBinary(89))
    newsroom_capsule: Mapped[bytes] = mapped_column(LargeBinary(89))
    sealed_metadata: Mapped[bytes] = mapped_column(LargeBinary(1065))
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    body_size: Mapped[int] = mapped_column(BigInteger)
    created_on: Mapped[dt.date] = mapped_column(Date)
    author: Mapped[str | None] = mapped_column(String(64), default=None)
    # "unread", "read" or "deleted" (by the source, whose capsule is then erased).
    source_state: Mapped[str] = mapped_column(String(8), default="unread")


class AuditEntry(Base):
    """Who did what, on which day. Never content, never an exact time."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_id)
    day: Mapped[dt.date] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(120), default="")


class Approval(Base):
    """A deletion one editor asked for, waiting for a second admin (app/services/approvals.py)."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("action", "target_id"), NO_ROWID)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_id)
    action: Mapped[str] = mapped_column(String(24))
    target_id: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(ForeignKey("editors.id", ondelete="CASCADE"), index=True)
    requested_on: Mapped[dt.date] = mapped_column(Date)


class EvidenceLeaf(Base):
    """A commitment waiting for its day's anchor (docs/evidence.md, "Anchors").

    Keyed by the commitment itself, which is random to anyone without the
    receipt's salt, so the table keeps no order and names no item.
    """

    __tablename__ = "evidence_leaves"

    commitment: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)


class AnchorRow(Base):
    """A day's anchor (docs/evidence.md, "Anchors"), sealed: its statement, leaves, time stamp and signature.

    The clear columns say only which day it covers and whether the instance key
    has signed it yet; the time stamp's exact time is inside the seal.
    """

    __tablename__ = "anchors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_id)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    signed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sealed_record: Mapped[bytes] = mapped_column(LargeBinary)


class CustodyEntry(Base):
    """One custody entry (docs/evidence.md, "Custody"), sealed: the order is only inside the seals."""

    __tablename__ = "custody_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_id)
    day: Mapped[dt.date] = mapped_column(Date)
    sealed_entry: Mapped[bytes] = mapped_column(LargeBinary)


class CustodyHead(Base):
    """The chain's newest link and how many entries it has: one row, replaced with each append."""

    __tablename__ = "custody_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link: Mapped[str] = mapped_column(String(64), default="")
    entries: Mapped[int] = mapped_column(Integer, default=0)


class SigningKeyRecord(Base):
    """Every editor signing key ever made and whose it was: kept after the editor is deleted,
    so that the custody entries they signed still verify (docs/evidence.md, "Editor signing keys")."""

    __tablename__ = "signing_keys"

    public_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
