"""The instance key (docs/evidence.md, "The instance key"): made at init, sealed, published by fingerprint."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import Instance as InstanceRow
from app.evidence.identity import fingerprint, grouped
from app.services import keys
from tests.support import Instance
from tests.support.inprocess import EditorFactory, TestClient, log_in


def test_init_makes_it_and_only_a_newsroom_key_holder_opens_its_seed(db: Session, instance: Instance) -> None:
    row = db.get_one(InstanceRow, 1)
    assert row.signing_public_key is not None
    assert row.sealed_signing_seed is not None
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    key = keys.open_instance_key(session=db, newsroom_keys=newsroom_keys)
    assert key.public == row.signing_public_key
    assert key.seed not in row.sealed_signing_seed
    other = crypto.generate_keypair()
    with pytest.raises(crypto.DecryptionError):
        keys.open_instance_key(session=db, newsroom_keys={crypto.key_id(other.public): other})


def test_an_instance_from_before_receipts_gets_its_key_with_the_first_tip(db: Session, instance: Instance) -> None:
    db.execute(update(InstanceRow).values(signing_public_key=None, sealed_signing_seed=None))
    db.commit()
    made = keys.instance_fingerprint(db)
    row = db.get_one(InstanceRow, 1)
    assert row.signing_public_key is not None
    assert made == fingerprint(row.signing_public_key)
    assert keys.instance_fingerprint(db) == made  # made once


def test_the_admin_keys_page_shows_its_fingerprint(
    db: Session, make_editor: EditorFactory, editor_client: TestClient
) -> None:
    log_in(editor_client, make_editor("ana", admin=True).account)
    page = editor_client.get("/admin/keys").text
    assert grouped(keys.instance_fingerprint(db)) in page
