"""Abuse limits that identify no one: global budgets and a gate on Argon2id.

Nothing here is keyed by address or client; every counter is global to the
process, so a flood is throttled without recording who sent it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ServiceBusy, TryLater


class KdfGate:
    """At most ``slots`` Argon2id derivations at once; others wait briefly, then get a busy page.

    Without it a login flood would queue unbounded threads behind the KDF and
    starve the static pages and the form.
    """

    def __init__(self, slots: int) -> None:
        self._slots = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self, wait_seconds: float) -> Iterator[None]:
        if not self._slots.acquire(timeout=wait_seconds):
            raise ServiceBusy()
        try:
            yield
        finally:
            self._slots.release()


class HourlyBudget:
    """A count that may reach ``limit`` per clock hour, then refuses until the next."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._hour = -1
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        hour = int(time.time()) // 3600
        if hour != self._hour:
            self._hour, self._used = hour, 0

    def check(self, amount: int = 1) -> None:
        """Refuse if ``amount`` more would exceed the budget; takes nothing."""
        with self._lock:
            self._roll()
            if self._used + amount > self._limit:
                raise TryLater()

    def take(self, amount: int = 1) -> None:
        with self._lock:
            self._roll()
            if self._used + amount > self._limit:
                raise TryLater()
            self._used += amount


class Admission:
    def __init__(self, *, submissions: int, bytes_: int, new_codenames: int, kdf_slots: int) -> None:
        self.submissions = HourlyBudget(submissions)
        self.bytes = HourlyBudget(bytes_)
        self.new_codenames = HourlyBudget(new_codenames)
        self.kdf = KdfGate(kdf_slots)
