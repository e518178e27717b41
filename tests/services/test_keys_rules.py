"""The newsroom-key rules: set-up happens once, rotation keeps old tips readable, recovery needs the right secret."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto, errors
from app.db.migrate import upgrade_database
from app.db.models import AuditEntry, Editor, Item, NewsroomKey
from app.db.models import Instance as InstanceRow
from app.db.session import make_engine
from app.services import keys
from app.services.keys import AlreadyInitialised
from app.settings import Settings
from tests.support import Instance, SettingsFactory
from tests.support.inprocess import EditorFactory, SourceFactory, session_on


@pytest.fixture
def bare(tmp_path: Path, make_settings: SettingsFactory) -> Iterator[tuple[Settings, Session]]:
    """A migrated database that was never initialised, and a session on it."""
    settings = make_settings(tmp_path / "bare")
    settings.data_dir.mkdir(mode=0o700)
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine)
    engine.dispose()
    with session_on(settings) as session:
        yield settings, session


def _initialise(settings: Settings, session: Session) -> str:
    return keys.initialise_instance(
        session=session, pepper_path=settings.pepper_path, codename_kdf=settings.codename_kdf
    )


def _active(db: Session) -> list[NewsroomKey]:
    return list(db.scalars(select(NewsroomKey).where(NewsroomKey.active)))


def _item_capsules(db: Session) -> list[bytes]:
    return list(db.scalars(select(Item.capsule)))


def test_initialising_makes_a_private_pepper_and_one_active_key_that_recovery_opens(
    bare: tuple[Settings, Session],
) -> None:
    settings, session = bare
    secret = _initialise(settings, session)
    pepper = settings.pepper_path
    assert stat.S_IMODE(pepper.stat().st_mode) == 0o600
    assert len(keys.load_pepper(pepper)) == crypto.PEPPER_SIZE
    (key,) = _active(session)
    assert key.key_id == crypto.key_id(key.public_key).hex()
    assert keys.active_public_key(session) == key.public_key
    opened = keys.open_with_recovery(session=session, recovery_secret=secret)
    assert [kp.public for kp in opened.values()] == [key.public_key]
    assert keys.codename_kdf(session) == settings.codename_kdf


def test_an_instance_is_initialised_only_once(instance: Instance, db: Session) -> None:
    pepper = instance.settings.pepper_path.read_bytes()
    (key,) = _active(db)
    with pytest.raises(AlreadyInitialised):
        _initialise(instance.settings, db)
    db.rollback()
    assert instance.settings.pepper_path.read_bytes() == pepper
    assert [k.key_id for k in db.scalars(select(NewsroomKey))] == [key.key_id]


def test_a_pepper_left_behind_refuses_initialising_and_is_kept(bare: tuple[Settings, Session]) -> None:
    settings, session = bare
    settings.pepper_path.write_bytes(b"p" * crypto.PEPPER_SIZE)
    with pytest.raises(AlreadyInitialised):
        _initialise(settings, session)
    session.rollback()
    assert settings.pepper_path.read_bytes() == b"p" * crypto.PEPPER_SIZE
    assert session.get(InstanceRow, 1) is None
    assert session.scalars(select(NewsroomKey)).all() == []


def test_an_instance_row_without_a_pepper_refuses_initialising(bare: tuple[Settings, Session]) -> None:
    settings, session = bare
    session.add(InstanceRow(id=1, codename_kdf_time_cost=1, codename_kdf_memory_kib=8, codename_kdf_parallelism=1))
    session.commit()
    with pytest.raises(AlreadyInitialised):
        _initialise(settings, session)
    assert not settings.pepper_path.exists()


def test_nothing_works_before_initialising(bare: tuple[Settings, Session]) -> None:
    settings, session = bare
    with pytest.raises(errors.NotInitialised):
        keys.active_public_key(session)
    with pytest.raises(errors.NotInitialised):
        keys.open_with_recovery(session=session, recovery_secret=crypto.generate_recovery_secret())
    with pytest.raises(errors.NotInitialised):
        keys.rotate_newsroom_key(session=session)
    with pytest.raises(errors.NotInitialised):
        keys.codename_kdf(session)
    with pytest.raises(errors.NotInitialised):
        keys.load_pepper(settings.pepper_path)


def test_a_pepper_of_the_wrong_size_is_not_an_instance(instance: Instance) -> None:
    pepper = instance.settings.pepper_path
    pepper.write_bytes(pepper.read_bytes()[:-1])
    with pytest.raises(errors.NotInitialised):
        keys.load_pepper(pepper)


def test_an_active_key_that_does_not_match_its_id_is_refused(db: Session) -> None:
    (key,) = _active(db)
    key.public_key = crypto.generate_keypair().public
    db.commit()
    with pytest.raises(errors.NotInitialised):
        keys.active_public_key(db)


def test_a_wrong_recovery_secret_opens_nothing(instance: Instance, db: Session) -> None:
    wrong = crypto.generate_recovery_secret()
    assert wrong != instance.recovery_secret
    with pytest.raises(crypto.DecryptionError):
        keys.open_with_recovery(session=db, recovery_secret=wrong)


def test_rotation_makes_a_new_active_key_and_old_tips_stay_readable(
    instance: Instance, db: Session, make_source: SourceFactory
) -> None:
    make_source("sealed to the first key")
    (old,) = _active(db)
    (old_capsule,) = _item_capsules(db)

    new = keys.rotate_newsroom_key(session=db)
    db.commit()
    (active,) = _active(db)
    assert active.public_key == new.public != old.public_key
    assert keys.active_public_key(db) == new.public
    assert db.get(NewsroomKey, old.key_id) is not None

    make_source("sealed to the new key")
    (new_capsule,) = set(_item_capsules(db)) - {old_capsule}
    recovered = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    assert set(recovered) == {bytes.fromhex(old.key_id), crypto.key_id(new.public)}
    for capsule in (old_capsule, new_capsule):
        crypto.open_capsule(capsule, recovered)
    # A tip sent after the rotation needs the new key: the old one alone does not open it.
    old_only = {kid: kp for kid, kp in recovered.items() if kid == bytes.fromhex(old.key_id)}
    with pytest.raises(crypto.DecryptionError):
        crypto.open_capsule(new_capsule, old_only)


def test_rotation_grants_the_new_key_to_holders_of_the_old_one_only(db: Session, make_editor: EditorFactory) -> None:
    holder, waiting = make_editor(), make_editor(grant=False)
    new = keys.rotate_newsroom_key(session=db)
    db.commit()
    db.expire_all()
    new_id = crypto.key_id(new.public).hex()
    holder_row, waiting_row = db.get_one(Editor, holder.id), db.get_one(Editor, waiting.id)
    assert len(holder_row.grants) == 2
    assert waiting_row.grants == []
    (grant,) = [g for g in holder_row.grants if g.key_id == new_id]
    # Sealed to the editor's own key: their passphrase unwraps it, and it opens to the new key.
    editor_key = crypto.unwrap_secret_key(holder_row.wrapped_secret_key, holder.account.passphrase)
    assert crypto.open_sealed_keypair(editor_key, grant.sealed_secret_key).public == new.public


def test_rotating_from_the_desk_ends_every_session_and_is_audited(db: Session, make_editor: EditorFactory) -> None:
    made = [make_editor(), make_editor(grant=False)]
    (old,) = _active(db)
    key_id_hex = keys.rotate_and_end_logins(session=db, actor="ana")
    db.expire_all()
    assert [e.session_epoch for e in db.scalars(select(Editor).where(Editor.id.in_([m.id for m in made])))] == [1, 1]
    (active,) = _active(db)
    assert active.key_id == key_id_hex != old.key_id
    rotations = db.scalars(select(AuditEntry).where(AuditEntry.action == "rotated newsroom key")).all()
    assert [(e.actor, e.target) for e in rotations] == [("ana", key_id_hex)]
