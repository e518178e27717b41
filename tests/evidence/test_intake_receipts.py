"""A real server writes a sealed receipt for every message and file, and leaves no content hash in the clear."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from sqlalchemy import select

from app import crypto
from app.clock import utc_today
from app.db.models import EvidenceLeaf, Instance, Item
from app.db.session import make_engine, make_session_factory
from app.evidence.identity import fingerprint
from app.evidence.receipts import Receipt
from app.services import keys, submissions
from app.storage import BlobStore
from app.version import buzon_version
from tests.media.test_strip import make_jpeg
from tests.support import LiveServer, post_multipart

RAW_MESSAGE = b"line one\r\nline two"  # as a browser sends a textarea


def _receipts(server: LiveServer) -> tuple[dict[str, tuple[Receipt, bytes]], set[bytes], str]:
    """Each item's receipt and stored content by kind, the pending leaves, and the instance fingerprint."""
    engine = make_engine(server.instance.settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            newsroom_keys = keys.open_with_recovery(session=session, recovery_secret=server.instance.recovery_secret)
            found = {}
            for item in session.scalars(select(Item)):
                receipt = submissions.open_receipt(item, newsroom_keys)
                assert receipt is not None
                _, chunks = submissions.open_item_stream(
                    session=session,
                    store=BlobStore(server.instance.settings.store_dir),
                    item_id=item.id,
                    newsroom_keys=newsroom_keys,
                )
                found[item.kind] = (receipt, b"".join(chunks))
            leaves = {leaf.commitment for leaf in session.scalars(select(EvidenceLeaf))}
            assert {leaf.day for leaf in session.scalars(select(EvidenceLeaf))} == {utc_today()}
            public = session.get_one(Instance, 1).signing_public_key
            assert public is not None
            return found, leaves, fingerprint(public)
    finally:
        engine.dispose()


def _submit(server: LiveServer, client: httpx.Client, photo: bytes) -> None:
    url = server.submit_url(client)
    boundary = "receipts"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'.encode()
        + RAW_MESSAGE
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="strip_metadata"\r\n\r\n1'.encode()
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="p.jpg"\r\n'.encode()
        + b"Content-Type: image/jpeg\r\n\r\n"
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(url, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 200, response.text


def test_receipts_describe_the_bytes_as_sent_and_as_stored(live_server: LiveServer, client: httpx.Client) -> None:
    photo = make_jpeg()
    _submit(live_server, client, photo)
    found, leaves, instance = _receipts(live_server)

    file_receipt, stored_photo = found["file"]
    assert (file_receipt.sent_size, file_receipt.sent_sha256) == (len(photo), hashlib.sha256(photo).hexdigest())
    assert file_receipt.stored_sha256 == hashlib.sha256(stored_photo).hexdigest() != file_receipt.sent_sha256
    assert file_receipt.stored_size == len(stored_photo)
    assert file_receipt.cleaned
    assert (file_receipt.cleaning, file_receipt.detected) == ("stripped", "jpeg")
    assert file_receipt.cleaner == f"buzon {buzon_version()}"

    message_receipt, stored_message = found["message"]
    assert stored_message == b"line one\nline two"
    assert message_receipt.sent_sha256 == hashlib.sha256(RAW_MESSAGE).hexdigest()
    assert message_receipt.stored_sha256 == hashlib.sha256(stored_message).hexdigest()
    assert (message_receipt.cleaning, message_receipt.cleaner, message_receipt.detected) == ("", "", "")

    # Both name this instance, and each one's commitment waits for today's anchor, beside the
    # commitment of the custody entry that records its arrival.
    assert {r.instance for r, _ in found.values()} == {instance}
    assert {r.commitment() for r, _ in found.values()} <= leaves
    assert len(leaves) == 2 * len(found)


def test_a_file_sent_as_is_has_equal_hashes_and_no_cleaner(live_server: LiveServer, client: httpx.Client) -> None:
    response = post_multipart(client, live_server.submit_url(client), {}, [("notes.txt", b"kept as sent")])
    assert response.status_code == 200, response.text
    found, _, _ = _receipts(live_server)
    receipt, stored = found["file"]
    assert stored == b"kept as sent"
    assert not receipt.cleaned
    assert receipt.sent_sha256 == hashlib.sha256(b"kept as sent").hexdigest()
    assert (receipt.cleaning, receipt.cleaner, receipt.detected) == ("not-requested", "", "")


def test_no_content_hash_or_salt_is_anywhere_in_the_clear(live_server: LiveServer, client: httpx.Client) -> None:
    # A hash in the clear would let whoever seizes the server confirm that a document they hold was sent.
    photo = make_jpeg()
    _submit(live_server, client, photo)
    found, _, _ = _receipts(live_server)
    needles = set()
    for receipt, _ in found.values():
        for value in (receipt.sent_sha256, receipt.stored_sha256, receipt.salt):
            needles |= {value.encode(), bytes.fromhex(value)}
    data_dir = live_server.instance.settings.data_dir
    for path in Path(data_dir).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not [n for n in needles if n in content], path


def test_a_receipt_moved_to_another_item_does_not_open(live_server: LiveServer, client: httpx.Client) -> None:
    response = post_multipart(client, live_server.submit_url(client), {"message": "a tip"}, [("a.txt", b"a file")])
    assert response.status_code == 200, response.text
    engine = make_engine(live_server.instance.settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            newsroom_keys = keys.open_with_recovery(
                session=session, recovery_secret=live_server.instance.recovery_secret
            )
            message, file = sorted(session.scalars(select(Item)), key=lambda i: i.kind != "message")
            message.sealed_receipt, file.sealed_receipt = file.sealed_receipt, message.sealed_receipt
            for item in (message, file):
                try:
                    submissions.open_receipt(item, newsroom_keys)
                except crypto.DecryptionError:
                    continue
                raise AssertionError(f"a swapped receipt opened for the {item.kind}")
    finally:
        engine.dispose()
