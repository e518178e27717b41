"""Editor accounts, grants of newsroom keys, and passphrase + TOTP login."""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import utc_today
from app.db.models import Editor, KeyGrant, NewsroomKey, SigningKeyRecord
from app.services import audit

TOTP_STEP_SECONDS = 30
MAX_USERNAME_CHARS = 64


class LoginFailed(errors.InvalidInput):
    """Wrong username, passphrase or code. Which one is never said."""


class InvalidUsername(errors.InvalidInput):
    pass


class EditorExists(errors.Conflict):
    pass


@dataclass(frozen=True, repr=False)
class UnlockedEditor:
    editor_id: str
    username: str
    is_admin: bool
    newsroom_keys: crypto.NewsroomKeys
    # The editor's own Ed25519 key, which signs their custody entries (docs/evidence.md).
    signing_key: crypto.SigningKey
    session_epoch: int = 0

    def __repr__(self) -> str:
        return f"UnlockedEditor({self.username!r})"


_PACKED_KEY_SIZE = crypto.KEY_ID_SIZE + crypto.KEY_SIZE


def pack_session(newsroom_keys: crypto.NewsroomKeys, signing_key: crypto.SigningKey) -> bytes:
    """Serialise what a login unlocked: the signing seed, then (key id || secret key) per newsroom key."""
    return signing_key.seed + pack_keys(newsroom_keys)


def unpack_session(packed: bytes) -> tuple[crypto.NewsroomKeys, crypto.SigningKey]:
    seed, rest = packed[: crypto.SIGNING_SEED_SIZE], packed[crypto.SIGNING_SEED_SIZE :]
    return unpack_keys(rest), crypto.signing_key_from_seed(seed)


def pack_keys(newsroom_keys: crypto.NewsroomKeys) -> bytes:
    """Serialise unlocked newsroom keys (key id || secret key, repeated)."""
    return b"".join(kid + kp.secret for kid, kp in newsroom_keys.items())


def unpack_keys(packed: bytes) -> crypto.NewsroomKeys:
    keys = {}
    for offset in range(0, len(packed), _PACKED_KEY_SIZE):
        secret = packed[offset + crypto.KEY_ID_SIZE : offset + _PACKED_KEY_SIZE]
        keys[packed[offset : offset + crypto.KEY_ID_SIZE]] = crypto.keypair_from_secret(secret)
    return keys


def is_valid_username(username: str) -> bool:
    """1 to 64 printable characters: no control or bidirectional characters to spoof a name in the audit log."""
    return 0 < len(username) <= MAX_USERNAME_CHARS and username.isprintable()


def _check_new_username(session: Session, username: str) -> str:
    username = username.strip()
    if not is_valid_username(username):
        raise InvalidUsername("username must be 1 to 64 printable characters")
    if session.scalars(select(Editor).where(Editor.username == username)).first() is not None:
        raise EditorExists()
    return username


def _new_editor(
    *, username: str, is_admin: bool, public_key: bytes, wrapped_secret_key: bytes, totp_secret: str, counter: int
) -> Editor:
    return Editor(
        id=secrets.token_hex(16),
        username=username,
        is_admin=is_admin,
        public_key=public_key,
        wrapped_secret_key=wrapped_secret_key,
        sealed_totp_secret=crypto.seal_totp_record(public_key, crypto.TotpRecord(totp_secret, counter)),
        created_on=utc_today(),
        session_epoch=0,
    )


def add_editor(
    *,
    session: Session,
    username: str,
    passphrase: str,
    is_admin: bool,
    kdf: crypto.KdfParams,
    newsroom_keys: crypto.NewsroomKeys | None,
) -> str:
    """Create an editor, grant them ``newsroom_keys`` if given; return the TOTP secret."""
    username = _check_new_username(session, username)
    keypair = crypto.generate_keypair()
    totp_secret = pyotp.random_base32()
    editor = _new_editor(
        username=username,
        is_admin=is_admin,
        public_key=keypair.public,
        wrapped_secret_key=crypto.wrap_secret_key(keypair.secret, passphrase, kdf),
        totp_secret=totp_secret,
        counter=0,
    )
    session.add(editor)
    _give_signing_key(session, editor)
    if newsroom_keys:
        grant_keys(session=session, editor=editor, newsroom_keys=newsroom_keys)
    audit.record(session, actor=audit.CLI_ACTOR, action="added editor", target=username)
    session.commit()
    return totp_secret


def _give_signing_key(session: Session, editor: Editor) -> None:
    """An Ed25519 key for the editor's custody entries, its seed sealed to their own key.

    Made with the account, so that no login changes a clear column; accounts
    made before evidence records get theirs at their next login.
    """
    key = crypto.new_signing_key()
    editor.signing_public_key = key.public
    editor.sealed_signing_seed = crypto.seal(editor.public_key, key.seed)
    session.add(SigningKeyRecord(public_key=key.public.hex(), username=editor.username))


def _signing_key(session: Session, editor: Editor, keypair: crypto.KeyPair) -> crypto.SigningKey:
    """The editor's signing key, unsealed with their unwrapped key."""
    if editor.sealed_signing_seed is None or editor.signing_public_key is None:
        _give_signing_key(session, editor)
        session.commit()
    assert editor.sealed_signing_seed is not None
    key = crypto.signing_key_from_seed(crypto.seal_open(keypair, editor.sealed_signing_seed))
    if key.public != editor.signing_public_key:
        raise crypto.DecryptionError()
    return key


@dataclass(frozen=True, repr=False)
class PendingEnrolment:
    """An invited editor's new keys, held in memory until they prove their TOTP code."""

    public_key: bytes
    wrapped_secret_key: bytes
    totp_secret: str

    def __repr__(self) -> str:
        return "PendingEnrolment(…)"


def prepare_enrolment(passphrase: str, kdf: crypto.KdfParams) -> PendingEnrolment:
    keypair = crypto.generate_keypair()
    return PendingEnrolment(
        public_key=keypair.public,
        wrapped_secret_key=crypto.wrap_secret_key(keypair.secret, passphrase, kdf),
        totp_secret=pyotp.random_base32(),
    )


def complete_enrolment(
    *, session: Session, username: str, is_admin: bool, pending: PendingEnrolment, otp: str
) -> Editor:
    """Create the editor if ``otp`` is a current code for the pending TOTP secret."""
    counter = _matching_counter(pending.totp_secret, otp.strip().replace(" ", ""), 0)
    if counter is None:
        raise LoginFailed()
    editor = _new_editor(
        username=_check_new_username(session, username),
        is_admin=is_admin,
        public_key=pending.public_key,
        wrapped_secret_key=pending.wrapped_secret_key,
        totp_secret=pending.totp_secret,
        counter=counter,  # the code that proved enrolment cannot log in again
    )
    session.add(editor)
    _give_signing_key(session, editor)
    audit.record(session, actor=username, action="enrolled")
    return editor


def check_passphrase(*, session: Session, editor_id: str, passphrase: str) -> bool:
    """Whether ``passphrase`` unwraps this editor's key (one Argon2id run)."""
    editor = session.get(Editor, editor_id)
    if editor is None:
        return False
    try:
        crypto.unwrap_secret_key(editor.wrapped_secret_key, passphrase)
    except (crypto.DecryptionError, crypto.InputTooLongError):
        return False
    return True


def change_passphrase(*, session: Session, editor_id: str, current: str, new: str, kdf: crypto.KdfParams) -> None:
    """Rewrap the editor's key under ``new``, and end every login of the account.

    LoginFailed if ``current`` does not unwrap the key. Two Argon2id runs. The
    key itself stays, so grants, sealed TOTP record and key files made with the
    old passphrase still name the same key; an old key file still needs the old
    passphrase.
    """
    editor = session.get(Editor, editor_id)
    if editor is None or len(new.encode("utf-8")) > crypto.MAX_PASSPHRASE_BYTES:
        raise LoginFailed()
    try:
        keypair = crypto.unwrap_secret_key(editor.wrapped_secret_key, current)
    except (crypto.DecryptionError, crypto.InputTooLongError) as e:
        raise LoginFailed() from e
    editor.wrapped_secret_key = crypto.wrap_secret_key(keypair.secret, new, kdf)
    editor.session_epoch += 1
    audit.record(session, actor=editor.username, action="changed passphrase")
    session.commit()


def new_totp_secret() -> str:
    return pyotp.random_base32()


def replace_totp(*, session: Session, editor_id: str, totp_secret: str, otp: str) -> None:
    """Make ``totp_secret`` the account's TOTP secret, if ``otp`` is a current code for it.

    For a lost or exposed phone: the old secret stops working, and every login
    of the account ends. LoginFailed for a wrong code; nothing changes then.
    """
    counter = _matching_counter(totp_secret, otp.strip().replace(" ", ""), 0)
    editor = session.get(Editor, editor_id)
    if counter is None or editor is None:
        raise LoginFailed()
    # The confirming code cannot log in again: it is the record's first spent step.
    editor.sealed_totp_secret = crypto.seal_totp_record(editor.public_key, crypto.TotpRecord(totp_secret, counter))
    editor.session_epoch += 1
    audit.record(session, actor=editor.username, action="replaced two-factor")
    session.commit()


def list_editors(session: Session) -> list[Editor]:
    return list(session.scalars(select(Editor).order_by(Editor.username)))


def holds_key(editor: Editor, key_id_hex: str) -> bool:
    return any(grant.key_id == key_id_hex for grant in editor.grants)


def grant_access(*, session: Session, editor_id: str, newsroom_keys: crypto.NewsroomKeys, actor: str) -> Editor | None:
    """Seal the keys to the editor, and enable the account again if it was revoked."""
    editor = session.get(Editor, editor_id)
    if editor is None:
        return None
    grant_keys(session=session, editor=editor, newsroom_keys=newsroom_keys)
    editor.disabled = False
    audit.record(session, actor=actor, action="granted access", target=editor.username)
    session.commit()
    return editor


def revoke_access(*, session: Session, editor_id: str, actor: str) -> Editor | None:
    """Disable the account: no key copies, no admin rights, no login, and its open logins end.

    A grant enables the account again, but not its admin rights: one grant
    must not restore all the powers of an account that was taken over.
    """
    editor = session.get(Editor, editor_id)
    if editor is None:
        return None
    editor.grants.clear()
    editor.is_admin = False
    editor.disabled = True
    editor.session_epoch += 1
    audit.record(session, actor=actor, action="revoked access", target=editor.username)
    session.commit()
    return editor


def delete_editor(*, session: Session, editor_id: str, actor: str) -> bool:
    editor = session.get(Editor, editor_id)
    if editor is None:
        return False
    audit.record(session, actor=actor, action="deleted editor", target=editor.username)
    session.delete(editor)
    session.commit()
    return True


def grant_keys(*, session: Session, editor: Editor, newsroom_keys: crypto.NewsroomKeys) -> None:
    """Seal each newsroom secret key to the editor's public key."""
    existing = {grant.key_id for grant in editor.grants}
    known = set(session.scalars(select(NewsroomKey.key_id)))
    for key_id, keypair in newsroom_keys.items():
        if key_id.hex() in known and key_id.hex() not in existing:
            editor.grants.append(
                KeyGrant(key_id=key_id.hex(), sealed_secret_key=crypto.seal(editor.public_key, keypair.secret))
            )


def totp_uri(*, username: str, totp_secret: str, issuer: str = "Buzón") -> str:
    return pyotp.TOTP(totp_secret).provisioning_uri(name=username, issuer_name=issuer)


def _matching_counter(totp_secret: str, code: str, last_counter: int) -> int | None:
    """The time step ``code`` belongs to (±1 step), if newer than ``last_counter``."""
    # compare_digest raises TypeError on non-ASCII text; such a code is simply wrong, not a server error.
    if not code.isascii():
        return None
    totp = pyotp.TOTP(totp_secret)
    now = int(time.time()) // TOTP_STEP_SECONDS
    for counter in (now - 1, now, now + 1):
        if counter > last_counter and hmac.compare_digest(totp.generate_otp(counter), code):
            return counter
    return None


class Authenticator:
    """Checks logins so that every attempt costs the same, whether the account exists or not.

    Wrapped keys made under older KDF parameters stay until their editor next
    logs in. An attempt therefore runs the KDF once for every parameter set
    still in use: on the account's own key for its set, on a dummy key for
    each other one. Unknown names and accounts of either set then cost the sum.
    """

    def __init__(self, kdf: crypto.KdfParams) -> None:
        self._kdf = kdf
        self._dummies: dict[crypto.KdfParams, bytes] = {}
        self._dummy(kdf)

    def _dummy(self, params: crypto.KdfParams) -> bytes:
        if params not in self._dummies:
            secret = crypto.generate_keypair().secret
            self._dummies[params] = crypto.wrap_secret_key(secret, secrets.token_hex(16), params)
        return self._dummies[params]

    def _unwrap_in_constant_cost(self, session: Session, editor: Editor | None, passphrase: str) -> crypto.KeyPair:
        in_use = {self._kdf}
        for wrapped in session.scalars(select(Editor.wrapped_secret_key)):
            with contextlib.suppress(crypto.DecryptionError):
                in_use.add(crypto.wrapped_key_params(wrapped))
        own = editor.wrapped_secret_key if editor is not None else None
        own_params = crypto.wrapped_key_params(own) if own is not None else None
        keypair: crypto.KeyPair | None = None
        for params in sorted(in_use, key=lambda p: (p.time_cost, p.memory_kib, p.parallelism)):
            with contextlib.suppress(crypto.DecryptionError):  # the dummies never unwrap
                if own is not None and params == own_params:
                    keypair = crypto.unwrap_secret_key(own, passphrase)
                else:
                    crypto.unwrap_secret_key(self._dummy(params), passphrase)
        if keypair is None:
            raise LoginFailed()
        return keypair

    def login(self, *, session: Session, username: str, passphrase: str, otp: str) -> UnlockedEditor:
        if len(username) > MAX_USERNAME_CHARS or len(passphrase.encode("utf-8")) > crypto.MAX_PASSPHRASE_BYTES:
            raise LoginFailed()
        editor = session.scalars(select(Editor).where(Editor.username == username.strip())).first()
        try:
            keypair = self._unwrap_in_constant_cost(session, editor, passphrase)
        except crypto.DecryptionError as e:
            raise LoginFailed() from e
        if editor is None or editor.disabled:
            raise LoginFailed()
        sealed = editor.sealed_totp_secret
        totp = crypto.open_totp_record(keypair, sealed)
        counter = _matching_counter(totp.secret, otp.strip().replace(" ", ""), totp.last_step)
        if counter is None:
            raise LoginFailed()
        # Recording the step, sealed, makes each code single-use without a clear
        # column that dates the login; replacing only the record we opened keeps
        # two concurrent logins from both spending one code.
        spent = session.execute(
            update(Editor)
            .where(Editor.id == editor.id, Editor.sealed_totp_secret == sealed)
            .values(
                sealed_totp_secret=crypto.seal_totp_record(editor.public_key, crypto.TotpRecord(totp.secret, counter))
            )
        )
        if getattr(spent, "rowcount", 0) != 1:
            session.rollback()
            raise LoginFailed()
        if crypto.wrapped_key_params(editor.wrapped_secret_key) != self._kdf:
            editor.wrapped_secret_key = crypto.wrap_secret_key(keypair.secret, passphrase, self._kdf)
        # Successful logins only: a failure may name no real account, and
        # writing attacker-chosen names into the log would let anyone fill it.
        audit.record(session, actor=editor.username, action="logged in")
        session.commit()
        keys = {}
        for grant in editor.grants:
            newsroom = crypto.open_sealed_keypair(keypair, grant.sealed_secret_key)
            keys[crypto.key_id(newsroom.public)] = newsroom
        return UnlockedEditor(
            editor_id=editor.id,
            username=editor.username,
            is_admin=editor.is_admin,
            newsroom_keys=keys,
            signing_key=_signing_key(session, editor, keypair),
            session_epoch=editor.session_epoch,
        )
