"""Daily anchors (docs/evidence.md, "Anchors"): the past days' commitments stamped, then signed.

The server stamps without any key: it needs only the leaves, the authority and
the newsroom public key to seal the result. Signing needs the instance key, so
it waits for an editor holding the newsroom key to log in.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import AnchorRow, CustodyHead, EvidenceLeaf
from app.evidence import anchors, timestamps
from app.evidence.anchors import Anchor, Head
from app.services import keys

logger = logging.getLogger("buzon.anchors")
# A day's leaves are removed from the pending table in groups of this many (SQLite's parameter limit).
_DELETE_BATCH = 500


class AuthorityUnavailable(Exception):
    """The time-stamping authority did not answer with a valid stamp; the day waits."""


@dataclass(frozen=True)
class TimestampAuthority:
    url: str
    roots: list[x509.Certificate]
    proxy: str | None
    timeout_seconds: float = 120.0

    def stamp(self, statement: bytes) -> bytes:
        """A checked RFC 3161 reply for ``statement``: the authority is sent its SHA-256, nothing else."""
        request = timestamps.request_for(statement)
        try:
            with httpx.Client(proxy=self.proxy, timeout=self.timeout_seconds, follow_redirects=False) as client:
                response = client.post(
                    self.url, content=request.der, headers={"Content-Type": "application/timestamp-query"}
                )
        except httpx.HTTPError as e:
            raise AuthorityUnavailable() from e
        if response.status_code != 200:
            raise AuthorityUnavailable()
        try:
            timestamps.check_reply(response.content, statement, self.roots, nonce=request.nonce)
        except timestamps.BadTimestamp as e:
            raise AuthorityUnavailable() from e
        return response.content


def authority_from(
    *, url: str | None, ca_file: Path | None, via_tor: bool, socks_url: str
) -> TimestampAuthority | None:
    """The configured authority, or None when stamping is off (no URL or no CA bundle)."""
    if not url or ca_file is None:
        return None
    roots = timestamps.load_roots(ca_file.read_bytes())
    return TimestampAuthority(url=url, roots=roots, proxy=socks_url if via_tor else None)


@dataclass
class Anchoring:
    anchored: list[dt.date] = field(default_factory=list)
    waiting: list[dt.date] = field(default_factory=list)


def pending_days(session: Session, *, before: dt.date) -> list[dt.date]:
    return sorted(session.scalars(select(EvidenceLeaf.day).where(EvidenceLeaf.day < before).distinct()))


def anchor_past_days(session: Session, *, authority: TimestampAuthority, today: dt.date) -> Anchoring:
    """Anchor every day before ``today`` whose leaves wait; a day the authority fails keeps waiting."""
    outcome = Anchoring()
    for day in pending_days(session, before=today):
        pending = list(session.scalars(select(EvidenceLeaf.commitment).where(EvidenceLeaf.day == day)))
        instance = keys.instance_fingerprint(session)
        newsroom_public_key = keys.active_public_key(session)
        head = _custody_head(session)
        session.rollback()  # no read transaction stays open while the authority is asked
        head_leaf = head.commitment()
        leaves = sorted({*pending, head_leaf} if head_leaf is not None else set(pending))
        statement = anchors.statement(instance=instance, day=day, leaves=leaves)
        try:
            reply = authority.stamp(statement)
        except AuthorityUnavailable:
            logger.warning("the time-stamping authority gave no valid stamp; a day waits")
            outcome.waiting.append(day)
            continue
        anchor = Anchor(statement=statement, leaves=leaves, reply=reply, head=head)
        session.add(
            AnchorRow(day=day, signed=False, sealed_record=crypto.seal_evidence(newsroom_public_key, anchor.document()))
        )
        # Only the leaves this anchor holds: one committed at midnight with yesterday's date waits for the next.
        for start in range(0, len(pending), _DELETE_BATCH):
            batch = pending[start : start + _DELETE_BATCH]
            session.execute(delete(EvidenceLeaf).where(EvidenceLeaf.day == day, EvidenceLeaf.commitment.in_(batch)))
        session.commit()
        outcome.anchored.append(day)
    return outcome


def _custody_head(session: Session) -> Head:
    """The custody chain's newest entry as the anchor names it (docs/evidence.md, "Tree")."""
    head = session.get(CustodyHead, 1)
    if head is None or not head.link:
        return Head()
    return Head(link=head.link, seq=head.entries - 1)


def open_anchor(row: AnchorRow, newsroom_keys: crypto.NewsroomKeys) -> Anchor:
    """An anchor record opened and checked; a damaged one is a DecryptionError."""
    try:
        anchor = anchors.parse_anchor(crypto.open_evidence(row.sealed_record, newsroom_keys))
    except anchors.BadAnchor as e:
        raise crypto.DecryptionError() from e
    if anchor.day != row.day:
        raise crypto.DecryptionError()
    return anchor


def sign_anchors(session: Session, *, newsroom_keys: crypto.NewsroomKeys) -> int:
    """Sign every anchor not yet signed with the instance key; the number signed.

    Runs in an editor's session, the only place the instance key can be opened.
    """
    unsigned = list(session.scalars(select(AnchorRow).where(AnchorRow.signed.is_(False))))
    if not unsigned:
        return 0
    instance_key = keys.open_instance_key(session=session, newsroom_keys=newsroom_keys)
    newsroom_public_key = keys.active_public_key(session)
    for row in unsigned:
        signed = anchors.sign(open_anchor(row, newsroom_keys), instance_key)
        row.sealed_record = crypto.seal_evidence(newsroom_public_key, signed.document())
        row.signed = True
    session.commit()
    return len(unsigned)


def anchors_holding(
    session: Session, *, leaf: bytes, newsroom_keys: crypto.NewsroomKeys, from_day: dt.date
) -> Anchor | None:
    """The anchor whose tree holds ``leaf``, looking from its day on; None while it waits."""
    for row in session.scalars(select(AnchorRow).where(AnchorRow.day >= from_day).order_by(AnchorRow.day)):
        anchor = open_anchor(row, newsroom_keys)
        if anchor.proof(leaf) is not None:
            return anchor
    return None
