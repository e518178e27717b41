"""Optional "new tips arrived" email to editors: content-free, fixed-size, batched.

Every ``notify_every_hours`` the editor app counts stored items. If the count
grew since the last check, it sends one identical message to the configured
recipients. The message never says how many tips arrived, from whom or when,
and batching blurs the time of arrival to the hour of the next check. The
count lives in process memory only; a restart starts from the current count,
so it never mails about tips that were already there.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Item
from app.settings import Settings

SUBJECT = "Buzón: new activity"
BODY = (
    "There is new activity on your tip line.\n"
    "Log in to the editor portal over Tor to read it.\n"
    "This message is the same every time, so it says nothing about the tips.\n"
)


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    username: str | None = None
    # Never in a repr: a mailer printed in a log or a traceback must not carry it.
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    def message(self) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = SUBJECT
        message["From"] = self.sender
        # Recipients stay hidden from each other; no Date or Message-ID, which the
        # relay may add, but we do not volunteer the exact time of sending.
        message["To"] = "undisclosed-recipients:;"
        message.set_content(BODY)
        return message

    def send(self) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(self.message(), from_addr=self.sender, to_addrs=list(self.recipients))


class NewTipNotifier:
    """Sends one notice when the number of stored items has grown since the last check."""

    def __init__(self, factory: sessionmaker[Session], mailer: Mailer) -> None:
        self._factory = factory
        self._mailer = mailer
        self._seen = self._count()

    def _count(self) -> int:
        with self._factory() as session:
            return int(session.scalar(select(func.count()).select_from(Item)) or 0)

    def check(self) -> bool:
        """Mail if there is something new; returns whether a notice was sent."""
        count = self._count()
        grew = count > self._seen
        if grew:
            self._mailer.send()  # on failure the count is kept, so the next check retries
        self._seen = count
        return grew


def mailer_from(settings: Settings) -> Mailer | None:
    if not settings.notify_smtp_host or not settings.notify_recipients:
        return None
    return Mailer(
        host=settings.notify_smtp_host,
        port=settings.notify_smtp_port,
        sender=settings.notify_from,
        recipients=tuple(settings.notify_recipients),
        starttls=settings.notify_smtp_starttls,
        username=settings.notify_smtp_username,
        password=settings.notify_smtp_password.get_secret_value() if settings.notify_smtp_password else None,
    )
