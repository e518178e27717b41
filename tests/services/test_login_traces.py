"""A login leaves no clear trace finer than the audit log's day, and each TOTP code still logs in once only."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Editor
from app.services.editors import Authenticator, LoginFailed
from tests.support import Instance
from tests.support.inprocess import EditorFactory


def _clear_columns(db: Session, editor_id: str) -> dict[str, object]:
    """Every column of the editor's row that a seizure reads without a key."""
    db.expire_all()
    row = db.execute(select(Editor.__table__).where(Editor.id == editor_id)).one()._asdict()
    return {name: value for name, value in row.items() if not name.startswith(("sealed_", "wrapped_"))}


def test_a_login_changes_no_clear_column_of_the_account(
    db: Session, instance: Instance, make_editor: EditorFactory
) -> None:
    made = make_editor("ana")
    before = _clear_columns(db, made.id)
    authenticator = Authenticator(instance.settings.editor_kdf)
    account = made.account
    authenticator.login(session=db, username=account.username, passphrase=account.passphrase, otp=account.otp())
    authenticator.login(session=db, username=account.username, passphrase=account.passphrase, otp=account.otp())
    assert _clear_columns(db, made.id) == before


def test_a_code_logs_in_once_even_across_authenticators(
    db: Session, instance: Instance, make_editor: EditorFactory
) -> None:
    account = make_editor("ana").account
    code = account.otp()
    first, second = Authenticator(instance.settings.editor_kdf), Authenticator(instance.settings.editor_kdf)
    first.login(session=db, username=account.username, passphrase=account.passphrase, otp=code)
    with pytest.raises(LoginFailed):
        second.login(session=db, username=account.username, passphrase=account.passphrase, otp=code)
