"""Daily anchors against a real RFC 3161 authority (OpenSSL's `openssl ts`): only roots leave, outages wait."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import crypto
from app.clock import utc_today
from app.db.models import AnchorRow, CustodyHead, EvidenceLeaf, Item
from app.db.models import Instance as InstanceRow
from app.evidence import anchors, merkle, timestamps
from app.evidence.anchors import Head
from app.services import keys, submissions
from app.services.anchors import Anchoring, TimestampAuthority, anchor_past_days, open_anchor, sign_anchors
from app.storage import BlobStore
from tests.support import Instance
from tests.support.inprocess import EditorFactory, SourceFactory, TestClient, log_in
from tests.support.tsa import Authority, RunningAuthority

TODAY = utc_today()
YESTERDAY = TODAY - dt.timedelta(days=1)


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[Authority]:
    running = RunningAuthority(tmp_path / "tsa")
    yield running.authority
    running.close()


def _client(authority: Authority) -> TimestampAuthority:
    roots = timestamps.load_roots(authority.ca_file.read_bytes())
    return TimestampAuthority(url=authority.url, roots=roots, proxy=None, timeout_seconds=30)


def _back_date(db: Session, day: dt.date) -> None:
    db.execute(update(EvidenceLeaf).values(day=day))
    db.commit()


def _leaves(db: Session) -> set[bytes]:
    return set(db.scalars(select(EvidenceLeaf.commitment)))


def _keys(db: Session, instance: Instance) -> crypto.NewsroomKeys:
    return keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)


def test_a_past_days_receipts_are_anchored_and_the_authority_sees_one_hash(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory, authority: Authority
) -> None:
    make_source("the first tip", files=[("a.txt", b"a file")])
    make_source("the second tip")
    _back_date(db, YESTERDAY)
    pending = _leaves(db)
    assert len(pending) == 6  # three receipts, and the custody entries of their arrival

    assert anchor_past_days(db, authority=_client(authority), today=TODAY) == Anchoring(anchored=[YESTERDAY])

    assert _leaves(db) == set()
    (row,) = db.scalars(select(AnchorRow))
    assert (row.day, row.signed) == (YESTERDAY, False)
    anchor = open_anchor(row, _keys(db, instance))
    # The pending leaves, and the custody chain's head, which anchors every entry before it.
    head = db.get_one(CustodyHead, 1)
    assert anchor.head == Head(link=head.link, seq=head.entries - 1)
    head_leaf = anchor.head.commitment()
    assert head_leaf is not None
    assert set(anchor.leaves) == pending | {head_leaf}
    assert anchor.fields["leaves"] == 7
    # The authority was asked once, for SHA-256 of the statement: no leaf, no content hash, no count.
    (request,) = authority.requests
    assert hashlib.sha256(anchor.statement).digest() in request
    newsroom_keys = _keys(db, instance)
    for item in db.scalars(select(Item)):
        receipt = submissions.open_receipt(item, newsroom_keys)
        assert receipt is not None
        for secret in (receipt.commitment(), bytes.fromhex(receipt.stored_sha256), bytes.fromhex(receipt.sent_sha256)):
            assert secret not in request
        # And every receipt has its path to the stamped root.
        proof = anchor.proof(receipt.commitment())
        assert proof is not None
        index, path = proof
        root = merkle.root_from_path(receipt.commitment(), index, len(anchor.leaves), path)
        assert root is not None
        assert root.hex() == anchor.fields["root"]
    # The stamp verifies against the authority's CA, and against no other.
    roots = timestamps.load_roots(authority.ca_file.read_bytes())
    stamped = timestamps.check_reply(anchor.reply, anchor.statement, roots)
    assert abs((stamped - dt.datetime.now(dt.UTC)).total_seconds()) < 120


def test_todays_leaves_wait_for_tomorrow(db: Session, make_source: SourceFactory, authority: Authority) -> None:
    make_source("arrived today")
    assert anchor_past_days(db, authority=_client(authority), today=TODAY) == Anchoring()
    assert len(_leaves(db)) == 2
    assert authority.requests == []


def test_an_outage_leaves_the_day_waiting_and_intake_goes_on(
    db: Session, instance: Instance, make_source: SourceFactory, authority: Authority
) -> None:
    make_source("sent before the outage")
    _back_date(db, YESTERDAY)
    authority.down = True
    assert anchor_past_days(db, authority=_client(authority), today=TODAY) == Anchoring(waiting=[YESTERDAY])
    assert db.scalars(select(AnchorRow)).all() == []
    make_source("sent during the outage")  # intake never waits for the authority
    assert len(_leaves(db)) == 4
    authority.down = False
    assert anchor_past_days(db, authority=_client(authority), today=TODAY) == Anchoring(anchored=[YESTERDAY])
    assert len(_leaves(db)) == 2  # today's


def test_an_unreachable_authority_is_an_outage(db: Session, make_source: SourceFactory, tmp_path: Path) -> None:
    make_source("a tip")
    _back_date(db, YESTERDAY)
    ca = RunningAuthority(tmp_path / "other")
    roots = timestamps.load_roots(ca.authority.ca_file.read_bytes())
    ca.close()  # its port is now closed
    nobody = TimestampAuthority(url=ca.authority.url, roots=roots, proxy=None, timeout_seconds=5)
    assert anchor_past_days(db, authority=nobody, today=TODAY) == Anchoring(waiting=[YESTERDAY])


def test_an_authority_whose_ca_is_not_trusted_stamps_nothing(
    db: Session, make_source: SourceFactory, authority: Authority, tmp_path: Path
) -> None:
    make_source("a tip")
    _back_date(db, YESTERDAY)
    stranger = RunningAuthority(tmp_path / "stranger")
    try:
        trusted_elsewhere = timestamps.load_roots(stranger.authority.ca_file.read_bytes())
    finally:
        stranger.close()
    mistrusted = TimestampAuthority(url=authority.url, roots=trusted_elsewhere, proxy=None, timeout_seconds=30)
    assert anchor_past_days(db, authority=mistrusted, today=TODAY) == Anchoring(waiting=[YESTERDAY])
    assert len(authority.requests) == 1  # it was asked, and its answer refused


def test_an_editors_session_signs_the_anchors_with_the_instance_key(
    db: Session, instance: Instance, make_source: SourceFactory, authority: Authority
) -> None:
    make_source("a tip")
    _back_date(db, YESTERDAY)
    anchor_past_days(db, authority=_client(authority), today=TODAY)
    newsroom_keys = _keys(db, instance)
    (row,) = db.scalars(select(AnchorRow))
    public = db.get_one(InstanceRow, 1).signing_public_key
    assert public is not None
    assert not open_anchor(row, newsroom_keys).signed_by(public)

    assert sign_anchors(db, newsroom_keys=newsroom_keys) == 1
    db.refresh(row)
    assert row.signed
    signed = open_anchor(row, newsroom_keys)
    assert signed.signed_by(public)
    assert not signed.signed_by(crypto.new_signing_key().public)
    assert sign_anchors(db, newsroom_keys=newsroom_keys) == 0


def test_a_damaged_or_moved_anchor_record_does_not_open(
    db: Session, instance: Instance, make_source: SourceFactory, authority: Authority
) -> None:
    make_source("a tip")
    _back_date(db, YESTERDAY)
    anchor_past_days(db, authority=_client(authority), today=TODAY)
    (row,) = db.scalars(select(AnchorRow))
    newsroom_keys = _keys(db, instance)
    row.day = TODAY  # the clear day changed to another
    with pytest.raises(crypto.DecryptionError):
        open_anchor(row, newsroom_keys)
    row.day = YESTERDAY
    row.sealed_record = row.sealed_record[:-1] + bytes([row.sealed_record[-1] ^ 1])
    with pytest.raises(crypto.DecryptionError):
        open_anchor(row, newsroom_keys)


def test_a_reply_checks_only_for_its_own_statement_and_request(authority: Authority) -> None:
    client = _client(authority)
    statement = anchors.statement(instance="ab" * 32, day=YESTERDAY, leaves=[bytes(32)])
    other = anchors.statement(instance="ab" * 32, day=YESTERDAY, leaves=[bytes([1]) * 32])
    reply = client.stamp(statement)
    timestamps.check_reply(reply, statement, client.roots)
    with pytest.raises(timestamps.BadTimestamp):
        timestamps.check_reply(reply, other, client.roots)
    with pytest.raises(timestamps.BadTimestamp):
        timestamps.check_reply(reply, statement, client.roots, nonce=12345)
    with pytest.raises(timestamps.BadTimestamp):
        timestamps.check_reply(reply[:-10], statement, client.roots)


def test_the_first_login_after_anchoring_signs_the_anchor(
    db: Session,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
    authority: Authority,
) -> None:
    make_source("a tip")
    _back_date(db, YESTERDAY)
    anchor_past_days(db, authority=_client(authority), today=TODAY)
    log_in(editor_client, make_editor("ana").account)
    (row,) = db.scalars(select(AnchorRow))
    db.refresh(row)
    assert row.signed


def test_the_source_page_shows_each_items_time_stamp_by_day(
    db: Session,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
    authority: Authority,
) -> None:
    made = make_source("a tip", files=[("photo.jpg", b"\xff\xd8\xff not really a photo")])
    log_in(editor_client, make_editor("ana").account)
    before = editor_client.get(f"/sources/{made.id}").text
    assert before.count("Time stamp: waiting for the daily time stamp") == 2
    db.execute(update(EvidenceLeaf).values(day=YESTERDAY))
    db.commit()
    anchor_past_days(db, authority=_client(authority), today=TODAY)
    after = editor_client.get(f"/sources/{made.id}").text
    assert after.count("Time stamp: in the anchor of ") == 2
    assert "waiting for the daily time stamp" not in after
    assert re.search(r"in the anchor of \d{4}-\d{2}-\d{2}<", after)  # a day, never a time
