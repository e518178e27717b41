"""Settings that hold secrets never show them when printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services.notifications import mailer_from
from app.settings import Settings


def test_database_and_smtp_passwords_stay_out_of_printed_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUZON_DATABASE_URL", "postgresql+psycopg://buzon:hunter2-db@db.internal/buzon")
    monkeypatch.setenv("BUZON_NOTIFY_SMTP_PASSWORD", "hunter2-smtp")
    settings = Settings(data_dir=tmp_path, notify_smtp_host="mail.internal", notify_recipients=["desk@example.org"])
    for shown in (repr(settings), str(settings), str(settings.model_dump())):
        assert "hunter2" not in shown
    # ...while the code that needs them still gets them.
    assert settings.resolved_database_url.endswith(":hunter2-db@db.internal/buzon")
    mailer = mailer_from(settings)
    assert mailer is not None
    assert mailer.password == "hunter2-smtp"


def test_without_a_database_url_the_default_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).resolved_database_url == f"sqlite:///{tmp_path / 'buzon.db'}"
