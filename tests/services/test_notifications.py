"""The optional new-activity email: sent once per batch, identical every time, content-free."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.db.session import make_engine, make_session_factory
from app.services.notifications import BODY, NewTipNotifier, mailer_from
from tests.support import ServerFactory, SettingsFactory, initialise, submit_tip


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to receive a message, no extensions."""

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        server: _SmtpServer = self.server  # type: ignore[assignment]
        self.reply("220 test ESMTP")
        envelope: dict[str, list[str]] = {"rcpt": []}
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 test")
            elif verb == "MAIL":
                self.reply("250 ok")
            elif verb == "RCPT":
                envelope["rcpt"].append(line.split(":", 1)[1].strip(" <>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = []
                while (chunk := self.rfile.readline().decode()) != ".\r\n":
                    data.append(chunk)
                server.messages.append(("".join(data), envelope["rcpt"]))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    messages: list[tuple[str, list[str]]]


@pytest.fixture
def smtp() -> Iterator[_SmtpServer]:
    server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_identical_notice_per_batch_and_none_without_news(
    tmp_path: Path, smtp: _SmtpServer, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    settings = make_settings(
        tmp_path / "data",
        notify_smtp_host="127.0.0.1",
        notify_smtp_port=smtp.server_address[1],
        notify_smtp_starttls=False,
        notify_recipients=["desk@example.org", "editor@example.org"],
    )
    instance = initialise(settings)
    server = server_factory(instance)
    mailer = mailer_from(settings)
    assert mailer is not None
    notifier = NewTipNotifier(make_session_factory(make_engine(settings.resolved_database_url)), mailer)
    assert notifier.check() is False  # nothing new since start: no mail
    marker = "notify-marker-7431"
    with httpx.Client() as client:
        submit_tip(server, client, f"first {marker}", [("secret-name.pdf", b"%PDF-1.4 x")])
        submit_tip(server, client, "second tip")
    assert notifier.check() is True  # two tips, one notice
    assert notifier.check() is False
    with httpx.Client() as client:
        submit_tip(server, client, "a third, much longer tip " * 100)
    assert notifier.check() is True
    assert len(smtp.messages) == 2
    (first, recipients), (second, _) = smtp.messages
    assert sorted(recipients) == ["desk@example.org", "editor@example.org"]
    assert BODY.splitlines()[0] in first
    for text in (first, second):
        assert marker not in text
        assert "secret-name" not in text
        assert "desk@example.org" not in text  # recipients are not disclosed to each other
    # Fixed size: the notice for two tips and for one long tip are byte-identical.
    assert first == second


def test_notifications_are_off_without_a_host(tmp_path: Path, make_settings: SettingsFactory) -> None:
    assert mailer_from(make_settings(tmp_path / "data", notify_recipients=["a@example.org"])) is None
    assert mailer_from(make_settings(tmp_path / "data", notify_smtp_host="127.0.0.1")) is None


def test_the_mailer_never_shows_its_password(tmp_path: Path, make_settings: SettingsFactory) -> None:
    settings = make_settings(
        tmp_path / "data",
        notify_smtp_host="smtp.example.org",
        notify_smtp_username="buzon",
        notify_smtp_password="hunter2-secret",
        notify_recipients=["desk@example.org"],
    )
    mailer = mailer_from(settings)
    assert mailer is not None
    assert mailer.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(mailer)
    assert "hunter2-secret" not in str(mailer)
