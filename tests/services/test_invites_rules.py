"""The invite rules, called directly on a database: who may be invited, how long a link lives, what redeeming needs."""

from __future__ import annotations

import datetime as dt
import hashlib
import string
import time

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import crypto
from app.clock import utc_today
from app.db.models import AuditEntry, Editor, Invite
from app.services import editors, invites
from app.services.editors import MAX_USERNAME_CHARS, TOTP_STEP_SECONDS, PendingEnrolment
from app.services.invites import INVITE_DAYS, InviteInvalid, InviteRefused
from tests.support import Instance
from tests.support.inprocess import EditorFactory, session_on

ACTOR = "ana"
PASSPHRASE = "enrolment passphrase 1234"


def _audit(db: Session) -> list[tuple[str, str, str]]:
    # Sorted: entries keep no order within a day (random ids), so tests compare them as a multiset.
    return sorted((e.actor, e.action, e.target) for e in db.scalars(select(AuditEntry)))


def _invite_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Invite)) or 0


def _usernames(db: Session) -> list[str]:
    return [e.username for e in editors.list_editors(db)]


def _invite(db: Session, username: str = "dana", *, is_admin: bool = False) -> str:
    return invites.create_invite(session=db, username=username, is_admin=is_admin, actor=ACTOR)


def _row(db: Session, username: str) -> Invite:
    return db.scalars(select(Invite).where(Invite.username == username)).one()


def _expire(db: Session, username: str, *, days_ago: int = 1) -> None:
    _row(db, username).expires_on = utc_today() - dt.timedelta(days=days_ago)
    db.commit()


def _pending(instance: Instance) -> PendingEnrolment:
    return editors.prepare_enrolment(PASSPHRASE, instance.settings.editor_kdf)


def _now_counter() -> int:
    return int(time.time()) // TOTP_STEP_SECONDS


def _code(pending: PendingEnrolment, counter: int) -> str:
    return str(pyotp.TOTP(pending.totp_secret).generate_otp(counter))


def _wrong_code(pending: PendingEnrolment) -> str:
    """Six digits that match no step the server could accept now, or after a step boundary passes."""
    now = _now_counter()
    valid = {_code(pending, counter) for counter in range(now - 2, now + 3)}
    return next(code for code in (f"{n:06d}" for n in range(10**6)) if code not in valid)


def _stale_code(pending: PendingEnrolment) -> str:
    """The code of a step a minute and a half ago or earlier, unlike any step the server could accept now."""
    now = _now_counter()
    valid = {_code(pending, counter) for counter in range(now - 2, now + 3)}
    return next(code for code in (_code(pending, now - back) for back in range(3, 100)) if code not in valid)


def _redeem(db: Session, token: str, pending: PendingEnrolment, otp: str) -> Editor:
    return invites.redeem_invite(session=db, token=token, pending=pending, otp=otp)


# --- creating --------------------------------------------------------------------------


def test_an_invite_returns_a_token_that_is_stored_only_as_a_hash_and_is_audited(db: Session) -> None:
    token = _invite(db, "dana", is_admin=True)
    # 32 random bytes in URL-safe base64: short enough for find_invite, which ignores tokens over 64 characters.
    assert 43 <= len(token) <= 64
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    db.expire_all()
    (row,) = db.scalars(select(Invite))
    assert row.username == "dana"
    assert row.is_admin is True
    assert row.expires_on == utc_today() + dt.timedelta(days=INVITE_DAYS)
    assert row.token_hash == hashlib.sha256(token.encode()).digest()
    assert _audit(db) == [(ACTOR, "invited editor", "dana")]
    # Two invites never share a token.
    assert _invite(db, "erin") != token


def test_the_username_is_stripped_and_may_be_exactly_64_printable_characters(db: Session) -> None:
    longest = "ñ" * MAX_USERNAME_CHARS
    _invite(db, f"  {longest}\t")
    _invite(db, " dana maría ")
    assert sorted(i.username for i in invites.pending_invites(db)) == sorted([longest, "dana maría"])
    assert [target for _, _, target in _audit(db)] == sorted([longest, "dana maría"])


@pytest.mark.parametrize(
    "username",
    [
        "",
        "   ",
        "\t\n",
        "a" * (MAX_USERNAME_CHARS + 1),
        "dana\x00",
        "da\nna",
        "da\tna",
        "dana\x1b[31m",
        "da\u200bna",  # a zero-width space: invisible, so not printable
        "anita\u202egnp.exe",  # a right-to-left override: reads as another name in the audit log
    ],
)
def test_a_malformed_username_is_refused_and_nothing_is_written(db: Session, username: str) -> None:
    with pytest.raises(InviteRefused):
        _invite(db, username)
    db.rollback()
    assert _invite_count(db) == 0
    assert _audit(db) == []


@pytest.mark.parametrize("username", ["da\nna", "dana\x1b[31m", "anita\u202egnp.exe"])
def test_an_editor_added_from_the_command_line_is_held_to_the_same_rule(
    db: Session, instance: Instance, username: str
) -> None:
    # `buzon editor add` went through editors.add_editor, which checked only the length.
    with pytest.raises(editors.InvalidUsername):
        editors.add_editor(
            session=db,
            username=username,
            passphrase=PASSPHRASE,
            is_admin=False,
            kdf=instance.settings.editor_kdf,
            newsroom_keys=None,
        )
    db.rollback()
    assert _usernames(db) == []
    assert _audit(db) == []


@pytest.mark.parametrize("username", ["\x00", "da\nna", "a" * (MAX_USERNAME_CHARS + 1)])
def test_cancelling_a_name_no_invite_can_have_writes_nothing(db: Session, username: str) -> None:
    # The editor-form fuzzer found a 500 on PostgreSQL for a NUL here, and an audit line of junk on SQLite.
    invites.cancel_invite(session=db, username=username, actor=ACTOR)
    assert _audit(db) == []


def test_the_username_of_an_editor_is_refused_and_nothing_is_written(db: Session, make_editor: EditorFactory) -> None:
    make_editor("bob")
    before = _audit(db)
    for username in ("bob", "  bob  "):
        with pytest.raises(InviteRefused, match="bob"):
            _invite(db, username)
        db.rollback()
    assert _invite_count(db) == 0
    assert _audit(db) == before
    assert _usernames(db) == ["bob"]


def test_inviting_a_pending_username_again_replaces_the_old_link(db: Session) -> None:
    # Not refused: a lost or leaked link is replaced by sending a new one (create_invite's own comment).
    old = _invite(db, "dana", is_admin=True)
    new = _invite(db, "dana", is_admin=False)
    assert new != old
    with pytest.raises(InviteInvalid):
        invites.get_invite(session=db, token=old)
    (row,) = db.scalars(select(Invite))
    assert invites.get_invite(session=db, token=new) is row
    assert row.is_admin is False
    assert _audit(db) == [(ACTOR, "invited editor", "dana")] * 2


# --- finding ---------------------------------------------------------------------------


def test_a_live_invite_is_found_by_its_token(db: Session) -> None:
    token = _invite(db, "dana", is_admin=True)
    _invite(db, "erin")
    invite = invites.get_invite(session=db, token=token)
    assert (invite.username, invite.is_admin) == ("dana", True)
    assert invites.find_invite(session=db, token=token) is invite


@pytest.mark.parametrize("token", ["", "x", "é" * 43, "a" * 65])
def test_an_unknown_token_is_invalid(db: Session, token: str) -> None:
    real = _invite(db, "dana")
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    for wrong in (token, real[:-1], real + "A", flipped):
        assert invites.find_invite(session=db, token=wrong) is None
        with pytest.raises(InviteInvalid):
            invites.get_invite(session=db, token=wrong)


def test_an_invite_lives_through_its_last_day_and_not_a_day_longer(db: Session) -> None:
    token = _invite(db, "dana")
    _expire(db, "dana", days_ago=0)
    assert invites.get_invite(session=db, token=token).username == "dana"
    _expire(db, "dana", days_ago=1)
    assert invites.find_invite(session=db, token=token) is None
    with pytest.raises(InviteInvalid):
        invites.get_invite(session=db, token=token)


def test_pending_invites_lists_only_unexpired_ones_by_username(db: Session) -> None:
    for username in ("erin", "dana", "carl", "bea"):
        _invite(db, username)
    _expire(db, "carl", days_ago=1)
    _expire(db, "bea", days_ago=30)
    _expire(db, "erin", days_ago=0)
    assert [i.username for i in invites.pending_invites(db)] == ["dana", "erin"]
    # Expired rows are hidden, not deleted.
    assert _invite_count(db) == 4


def test_cancelling_an_invite_removes_it_and_is_audited(db: Session) -> None:
    token = _invite(db, "dana")
    kept = _invite(db, "erin")
    invites.cancel_invite(session=db, username="dana", actor=ACTOR)
    with pytest.raises(InviteInvalid):
        invites.get_invite(session=db, token=token)
    assert invites.get_invite(session=db, token=kept).username == "erin"
    assert (ACTOR, "cancelled invite", "dana") in _audit(db)


# --- redeeming -------------------------------------------------------------------------


def test_redeeming_with_a_current_code_creates_the_editor_and_uses_up_the_invite(
    db: Session, instance: Instance
) -> None:
    token = _invite(db, "dana")
    pending = _pending(instance)
    counter = _now_counter()
    editor = _redeem(db, token, pending, _code(pending, counter))

    # Seen from another session: the editor and the deletion of the invite were committed together.
    with session_on(instance.settings) as other:
        (row,) = editors.list_editors(other)
        assert (row.id, row.username, row.is_admin) == (editor.id, "dana", False)
        assert row.public_key == pending.public_key
        assert row.wrapped_secret_key == pending.wrapped_secret_key
        assert row.grants == []  # reads nothing until an admin grants access
        # The enrolment code is spent: its step is the guard sealed in the TOTP record.
        keypair = crypto.unwrap_secret_key(row.wrapped_secret_key, PASSPHRASE)
        assert crypto.open_totp_record(keypair, row.sealed_totp_secret) == crypto.TotpRecord(
            pending.totp_secret, counter
        )
        assert _invite_count(other) == 0
        assert invites.pending_invites(other) == []


def test_an_invite_is_redeemed_only_once(db: Session, instance: Instance) -> None:
    token = _invite(db, "dana")
    first = _pending(instance)
    _redeem(db, token, first, _code(first, _now_counter()))
    second = _pending(instance)
    with pytest.raises(InviteInvalid):
        _redeem(db, token, second, _code(second, _now_counter()))
    db.rollback()
    (editor,) = editors.list_editors(db)
    assert editor.public_key == first.public_key


@pytest.mark.parametrize("is_admin", [True, False])
def test_redeeming_carries_over_the_admin_flag(db: Session, instance: Instance, is_admin: bool) -> None:
    token = _invite(db, "dana", is_admin=is_admin)
    pending = _pending(instance)
    editor = _redeem(db, token, pending, _code(pending, _now_counter()))
    assert editor.is_admin is is_admin
    db.expire_all()
    assert db.get_one(Editor, editor.id).is_admin is is_admin


def test_redeeming_is_audited_as_the_new_editor(db: Session, instance: Instance) -> None:
    token = _invite(db, "dana")
    pending = _pending(instance)
    _redeem(db, token, pending, _code(pending, _now_counter()))
    db.expire_all()
    assert _audit(db) == sorted([(ACTOR, "invited editor", "dana"), ("dana", "enrolled", "")])


def test_a_code_with_spaces_around_or_inside_is_accepted(db: Session, instance: Instance) -> None:
    token = _invite(db, "dana")
    pending = _pending(instance)
    code = _code(pending, _now_counter())
    _redeem(db, token, pending, f" {code[:3]} {code[3:]} ")
    assert _usernames(db) == ["dana"]


@pytest.mark.parametrize("kind", ["wrong", "stale", "empty", "not digits"])
def test_a_wrong_code_creates_no_editor_and_keeps_the_invite(db: Session, instance: Instance, kind: str) -> None:
    token = _invite(db, "dana", is_admin=True)
    pending = _pending(instance)
    otp = {
        "wrong": _wrong_code(pending),
        "stale": _stale_code(pending),
        "empty": "",
        "not digits": "１２３４５６",  # fullwidth digits: not ASCII, so simply wrong
    }[kind]
    before = _audit(db)
    with pytest.raises(editors.LoginFailed):
        _redeem(db, token, pending, otp)
    db.rollback()
    assert _usernames(db) == []
    assert _audit(db) == before
    invite = invites.get_invite(session=db, token=token)
    assert (invite.username, invite.is_admin) == ("dana", True)
    # The invite still works with the right code afterwards.
    _redeem(db, token, pending, _code(pending, _now_counter()))
    assert _usernames(db) == ["dana"]


def test_an_expired_invite_cannot_be_redeemed(db: Session, instance: Instance) -> None:
    token = _invite(db, "dana")
    _expire(db, "dana")
    pending = _pending(instance)
    with pytest.raises(InviteInvalid):
        _redeem(db, token, pending, _code(pending, _now_counter()))
    db.rollback()
    assert _usernames(db) == []
    assert _invite_count(db) == 1


def test_an_invite_whose_username_was_taken_meanwhile_is_invalid(
    db: Session, instance: Instance, make_editor: EditorFactory
) -> None:
    token = _invite(db, "dana")
    existing = make_editor("dana").id
    pending = _pending(instance)
    with pytest.raises(InviteInvalid):
        _redeem(db, token, pending, _code(pending, _now_counter()))
    db.rollback()
    (editor,) = editors.list_editors(db)
    assert editor.id == existing
    assert editor.public_key != pending.public_key
    assert ("dana", "enrolled", "") not in _audit(db)


def test_the_enrolled_editor_logs_in_with_a_later_code_but_never_the_enrolment_code(
    db: Session, instance: Instance
) -> None:
    passphrase = "enrolment passphrase 1234"
    token = _invite(db, "dana")
    pending = editors.prepare_enrolment(passphrase, instance.settings.editor_kdf)
    now = _now_counter()
    _redeem(db, token, pending, _code(pending, now))
    authenticator = editors.Authenticator(instance.settings.editor_kdf)
    with pytest.raises(editors.LoginFailed):
        authenticator.login(session=db, username="dana", passphrase=passphrase, otp=_code(pending, now))
    with pytest.raises(editors.LoginFailed):
        authenticator.login(session=db, username="dana", passphrase="not the passphrase", otp=_code(pending, now + 1))
    unlocked = authenticator.login(session=db, username="dana", passphrase=passphrase, otp=_code(pending, now + 1))
    assert (unlocked.username, unlocked.is_admin, unlocked.newsroom_keys) == ("dana", False, {})
