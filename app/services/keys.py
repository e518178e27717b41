"""Installation set-up and the newsroom keys."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import utc_today
from app.db.models import Editor, Instance, KeyGrant, NewsroomKey
from app.evidence.identity import fingerprint
from app.services import audit


class AlreadyInitialised(errors.Conflict):
    pass


def _write_secret_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def initialise_instance(*, session: Session, pepper_path: Path, codename_kdf: crypto.KdfParams) -> str:
    """Create the pepper, the instance row and the first newsroom key.

    Returns the recovery secret, which exists nowhere else afterwards.
    """
    if session.get(Instance, 1) is not None or pepper_path.exists():
        raise AlreadyInitialised()
    _write_secret_file(pepper_path, crypto.random_bytes(crypto.PEPPER_SIZE))
    session.add(
        Instance(
            id=1,
            codename_kdf_time_cost=codename_kdf.time_cost,
            codename_kdf_memory_kib=codename_kdf.memory_kib,
            codename_kdf_parallelism=codename_kdf.parallelism,
        )
    )
    recovery_secret = crypto.generate_recovery_secret()
    recovery_public_key = crypto.recovery_keypair(recovery_secret).public
    session.get_one(Instance, 1).recovery_public_key = recovery_public_key
    newsroom = add_newsroom_key(session=session, recovery_public_key=recovery_public_key)
    _make_instance_key(session.get_one(Instance, 1), newsroom.public)
    session.commit()
    return recovery_secret


def _make_instance_key(instance: Instance, newsroom_public_key: bytes) -> None:
    key = crypto.new_signing_key()
    instance.signing_public_key = key.public
    instance.sealed_signing_seed = crypto.seal_evidence(newsroom_public_key, key.seed)


def instance_fingerprint(session: Session) -> str:
    """The instance key's fingerprint, making the key first for an instance from before receipts.

    Making it needs no secret (the seed is sealed to the active newsroom key), so
    the first submission after an upgrade can do it; of two processes that race,
    the first to commit wins and the other reads its key.
    """
    instance = session.get(Instance, 1)
    if instance is None:
        raise errors.NotInitialised()
    if instance.signing_public_key is None:
        key = crypto.new_signing_key()
        session.execute(
            update(Instance)
            .where(Instance.id == 1, Instance.signing_public_key.is_(None))
            .values(
                signing_public_key=key.public,
                sealed_signing_seed=crypto.seal_evidence(active_public_key(session), key.seed),
            )
        )
        session.commit()
        session.refresh(instance)
    assert instance.signing_public_key is not None
    return fingerprint(instance.signing_public_key)


def open_instance_key(*, session: Session, newsroom_keys: crypto.NewsroomKeys) -> crypto.SigningKey:
    """The instance signing key, for a session that holds the newsroom key it is sealed to."""
    instance = session.get(Instance, 1)
    if instance is None or instance.sealed_signing_seed is None or instance.signing_public_key is None:
        raise errors.NotInitialised()
    key = crypto.signing_key_from_seed(crypto.open_evidence(instance.sealed_signing_seed, newsroom_keys))
    if key.public != instance.signing_public_key:
        raise crypto.DecryptionError()
    return key


def add_newsroom_key(*, session: Session, recovery_public_key: bytes) -> crypto.KeyPair:
    """Create a newsroom keypair, make it the active one and seal it for recovery."""
    keypair = crypto.generate_keypair()
    for old in session.scalars(select(NewsroomKey).where(NewsroomKey.active)):
        old.active = False
    session.add(
        NewsroomKey(
            key_id=crypto.key_id(keypair.public).hex(),
            public_key=keypair.public,
            recovery_grant=crypto.seal(recovery_public_key, keypair.secret),
            active=True,
            created_on=utc_today(),
        )
    )
    return keypair


def active_public_key(session: Session) -> bytes:
    key = session.scalars(select(NewsroomKey).where(NewsroomKey.active)).first()
    if key is None or crypto.key_id(key.public_key).hex() != key.key_id:
        raise errors.NotInitialised()
    return key.public_key


def holds_active_key(*, session: Session, newsroom_keys: crypto.NewsroomKeys) -> bool:
    """Whether ``newsroom_keys`` include the active newsroom key (the one new tips are sealed to)."""
    active = session.scalars(select(NewsroomKey.key_id).where(NewsroomKey.active)).first()
    return active is not None and any(key_id.hex() == active for key_id in newsroom_keys)


def open_with_recovery(*, session: Session, recovery_secret: str) -> crypto.NewsroomKeys:
    """Open every newsroom key with the recovery secret; DecryptionError if wrong."""
    recovery = crypto.recovery_keypair(recovery_secret)
    keys: crypto.NewsroomKeys = {}
    for row in session.scalars(select(NewsroomKey)):
        keypair = crypto.open_sealed_keypair(recovery, row.recovery_grant)
        keys[crypto.key_id(keypair.public)] = keypair
    if not keys:
        raise errors.NotInitialised()
    return keys


def load_pepper(pepper_path: Path) -> bytes:
    try:
        pepper = pepper_path.read_bytes()
    except FileNotFoundError as e:
        raise errors.NotInitialised() from e
    if len(pepper) != crypto.PEPPER_SIZE:
        raise errors.NotInitialised()
    return pepper


def codename_kdf(session: Session) -> crypto.KdfParams:
    instance = session.get(Instance, 1)
    if instance is None:
        raise errors.NotInitialised()
    return crypto.KdfParams(
        time_cost=instance.codename_kdf_time_cost,
        memory_kib=instance.codename_kdf_memory_kib,
        parallelism=instance.codename_kdf_parallelism,
    )


def rotate_newsroom_key(*, session: Session) -> crypto.KeyPair:
    """A new active newsroom key, sealed to recovery and to every editor who held the old one.

    Needs no secret: sealing uses public keys only. Old keys stay, for old tips.
    """
    instance = session.get(Instance, 1)
    if instance is None or instance.recovery_public_key is None:
        raise errors.NotInitialised()
    previous = session.scalars(select(NewsroomKey).where(NewsroomKey.active)).first()
    holders = (
        []
        if previous is None
        else list(session.scalars(select(Editor).join(KeyGrant).where(KeyGrant.key_id == previous.key_id)))
    )
    keypair = add_newsroom_key(session=session, recovery_public_key=instance.recovery_public_key)
    for editor in holders:
        editor.grants.append(
            KeyGrant(
                key_id=crypto.key_id(keypair.public).hex(),
                sealed_secret_key=crypto.seal(editor.public_key, keypair.secret),
            )
        )
    return keypair


def rotate_and_end_logins(*, session: Session, actor: str) -> str:
    """Rotate, log every editor out, audit and commit; return the new key id.

    Open sessions hold only the old keys: ending them all makes each next
    login pick up the new one.
    """
    new = rotate_newsroom_key(session=session)
    for account in session.scalars(select(Editor)):
        account.session_epoch += 1
    key_id_hex = crypto.key_id(new.public).hex()
    audit.record(session, actor=actor, action="rotated newsroom key", target=key_id_hex)
    session.commit()
    return key_id_hex


def remember_recovery_public_key(*, session: Session, recovery_secret: str) -> None:
    """For instances made before the recovery public key was stored."""
    instance = session.get(Instance, 1)
    if instance is not None and instance.recovery_public_key is None:
        instance.recovery_public_key = crypto.recovery_keypair(recovery_secret).public
