"""The custody log through the portal: each handling on the record, signed, and every tampering named."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import crypto
from app.clock import utc_today
from app.db.models import CustodyEntry, Item, Source, Submission
from app.evidence import custody as formats
from app.evidence.custody import Entry
from app.services import custody, keys, retention
from app.storage import BlobStore
from tests.support import Instance, csrf_token_in, server_env
from tests.support.inprocess import EditorFactory, MadeSource, SourceFactory, TestClient, log_in


def _chain(db: Session, instance: Instance) -> list[Entry]:
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    entries = custody.open_chain(db, newsroom_keys)
    assert None not in entries
    return sorted((e for e in entries if e is not None), key=lambda e: e.seq)


def _verify(db: Session, instance: Instance) -> formats.ChainCheck:
    db.expire_all()
    return custody.verify_chain(db, keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret))


@pytest.fixture
def handled(
    db: Session, make_source: SourceFactory, make_editor: EditorFactory, editor_client: TestClient
) -> MadeSource:
    """A tip with a file that ana views, downloads and marks as being verified."""
    made = make_source("a tip", files=[("plan.pdf", b"%PDF-1.4 the file")])
    log_in(editor_client, make_editor("ana").account)
    page = editor_client.get(f"/sources/{made.id}").text
    (download,) = re.findall(r'href="(/items/[0-9a-f]{32}/download)"', page)
    assert editor_client.get(download).status_code == 200
    token = csrf_token_in(page)
    changed = editor_client.post(f"/sources/{made.id}/status", data={"status": "verified", "csrf_token": token})
    assert changed.status_code in (200, 303)
    return made


def test_every_handling_is_on_the_record_signed_and_chained(
    db: Session, instance: Instance, handled: MadeSource
) -> None:
    entries = _chain(db, instance)
    actions = [(e.action, e.actor, e.detail) for e in entries]
    assert actions[:2] == [("received", "instance", "")] * 2
    assert sorted(actions[2:4]) == [("opened", "ana", "")] * 2
    assert actions[4] == ("downloaded", "ana", "")
    assert sorted(actions[5:]) == [("status changed", "ana", "verified")] * 2
    assert _verify(db, instance).sound
    # Each item's entries follow one another by item_prev, from its receipt on.
    (file,) = db.scalars(select(Item).join(Submission).where(Submission.source_id == handled.id, Item.kind == "file"))
    mine = [e for e in entries if e.item == entries[4].item]
    assert [e.action for e in mine] == ["received", "opened", "downloaded", "status changed"]
    assert all(later.item_prev == earlier.link() for earlier, later in itertools.pairwise(mine))
    assert file.custody_link == mine[-1].link()


def test_a_deleted_item_leaves_a_tombstone_and_the_chain_still_verifies(
    db: Session, instance: Instance, handled: MadeSource, editor_client: TestClient
) -> None:
    page = editor_client.get(f"/sources/{handled.id}").text
    (item_id,) = re.findall(r'href="/items/([0-9a-f]{32})/download"', page)
    file_commitment = next(e.item for e in _chain(db, instance) if e.action == "downloaded")
    deleted = editor_client.post(f"/items/{item_id}/delete", data={"csrf_token": csrf_token_in(page)})
    assert deleted.status_code in (200, 303)
    assert db.get(Item, item_id) is None
    last = _chain(db, instance)[-1]
    assert (last.action, last.item, last.actor) == ("deleted", file_commitment, "ana")
    assert _verify(db, instance).sound


def _entry_row(db: Session, instance: Instance, seq: int) -> CustodyEntry:
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    for row in db.scalars(select(CustodyEntry)):
        if formats.parse_entry(crypto.open_evidence(row.sealed_entry, newsroom_keys)).seq == seq:
            return row
    raise AssertionError(f"no entry {seq}")


def test_a_row_removed_from_the_database_is_named(db: Session, instance: Instance, handled: MadeSource) -> None:
    db.execute(delete(CustodyEntry).where(CustodyEntry.id == _entry_row(db, instance, 4).id))
    db.commit()
    check = _verify(db, instance)
    assert check.first_broken == 4
    assert (4, "missing: it was removed") in check.problems


def test_a_byte_changed_in_a_sealed_entry_is_named(db: Session, instance: Instance, handled: MadeSource) -> None:
    row = _entry_row(db, instance, 3)
    row.sealed_entry = row.sealed_entry[:40] + bytes([row.sealed_entry[40] ^ 1]) + row.sealed_entry[41:]
    db.commit()
    check = _verify(db, instance)
    assert check.first_broken == 3
    assert (3, "missing or damaged") in check.problems


def test_an_entry_forged_with_the_public_key_is_named(db: Session, instance: Instance, handled: MadeSource) -> None:
    # Whoever holds the database can seal to the newsroom key; they cannot sign as an editor or link in.
    entries = _chain(db, instance)
    forged = formats.new_entry(
        instance=entries[0].instance, seq=2, prev="ab" * 32, item=bytes(32), item_prev="",
        action="received", time="2026-12-04T10:00:00Z",
    )  # fmt: skip
    db.add(
        CustodyEntry(
            day=handled.source.created_on,
            sealed_entry=crypto.seal_evidence(keys.active_public_key(db), forged.document()),
        )
    )
    db.commit()
    check = _verify(db, instance)
    assert check.first_broken == 2
    assert (2, "two entries claim this position: one was inserted") in check.problems


def test_buzon_custody_verify_says_sound_then_names_the_broken_entry(
    db: Session, instance: Instance, handled: MadeSource, tmp_path: Path
) -> None:
    env = {**server_env(instance.settings, tmp_path), "BUZON_RECOVERY_SECRET": instance.recovery_secret}
    command = [sys.executable, "-m", "app", "custody", "verify"]
    sound = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert sound.returncode == 0, sound.stderr
    assert "sound: 7 entries" in sound.stdout
    db.execute(delete(CustodyEntry).where(CustodyEntry.id == _entry_row(db, instance, 5).id))
    db.commit()
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert "broken at entry 5" in broken.stdout


def test_retention_leaves_unsigned_tombstones_that_name_each_item(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    # Retention runs with no key at all: it names the items by the commitments kept beside them.
    made = make_source("forgotten", files=[("old.txt", b"old")])
    commitments = {
        i.commitment for i in db.scalars(select(Item).join(Submission).where(Submission.source_id == made.id))
    }
    db.execute(
        update(Source).where(Source.id == made.id).values(last_submission_on=utc_today() - dt.timedelta(days=90))
    )
    db.commit()
    assert retention.apply_retention(session=db, store=store, retention_days=30) == 1
    entries = _chain(db, instance)
    tombstones = [e for e in entries if e.action == "deleted"]
    assert {bytes.fromhex(e.item) for e in tombstones} == commitments
    assert {(e.actor, e.detail, e.sig) for e in tombstones} == {("instance", "retention", "")}
    received = {e.item: e.link() for e in entries if e.action == "received"}
    assert all(e.item_prev == received[e.item] for e in tombstones)
    assert _verify(db, instance).sound
