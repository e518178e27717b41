"""Abuse limits that identify no one: global budgets and a gate on Argon2id.

Nothing here is keyed by address or client; every counter is global to the
process, so a flood is throttled without recording who sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from anyio import to_thread

from app import crypto
from app.errors import ServiceBusy, TryLater

T = TypeVar("T")

# The lowest priority there is. Argon2id then takes only the CPU that the
# pages and the form leave over, so a login flood slows the logins, not the
# site. Raising a nice value back needs privileges, which is why the threads
# that carry it are the gate's own and run nothing but Argon2id.
KDF_NICENESS = 19
# Editors are few and their attempts are throttled per minute (app/web/throttle.py),
# so they wait for a slot rather than meet the busy page the sources' flood gets.
EDITOR_KDF_WAIT_SECONDS = 60.0


def _lower_priority() -> None:
    # On Linux a nice value belongs to one thread, not the process; elsewhere
    # the call would name a process, so nothing is changed there.
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), KDF_NICENESS)


def _ready() -> None:
    pass


class KdfGate:
    """At most ``slots`` pieces of work that derive with Argon2id at once, the derivations at low priority.

    Work waits up to ``wait_seconds`` for a slot, then gets a busy page:
    without that, a login flood would queue without bound and hold the memory
    of every waiting derivation.
    """

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._free: asyncio.Semaphore | None = None
        self._kdf_threads: ThreadPoolExecutor | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own the low-priority threads for as long as the app serves (its lifespan)."""
        threads = ThreadPoolExecutor(self._slots, thread_name_prefix="buzon-kdf", initializer=_lower_priority)
        try:
            # A thread starts now, so a failure to lower its priority stops the app at start-up.
            await asyncio.wrap_future(threads.submit(_ready))
            self._free, self._kdf_threads = asyncio.Semaphore(self._slots), threads
            yield
        finally:
            self._free = self._kdf_threads = None
            await to_thread.run_sync(threads.shutdown)  # derivations under way finish first

    async def run(self, work: Callable[[], T], *, wait_seconds: float, low_priority: bool = True) -> T:
        """``work()`` in a worker thread once a slot is free, else ServiceBusy after ``wait_seconds``.

        With ``low_priority``, the Argon2id runs inside ``work`` go to the
        gate's low-priority threads. The rest (the database, file moves) stays
        at normal priority: a starved thread holding a database lock or the
        GIL would stall the very pages it is meant to make way for.
        """
        free, threads = self._free, self._kdf_threads
        if free is None or threads is None:
            raise RuntimeError("the KDF gate runs only while its app is serving")
        try:
            async with asyncio.timeout(wait_seconds):
                await free.acquire()
        except TimeoutError as e:
            raise ServiceBusy() from e
        call = partial(_with_kdf_threads, threads, work) if low_priority else work
        try:
            return await _outlasting_cancellation(asyncio.ensure_future(to_thread.run_sync(call)))
        finally:
            free.release()


async def _outlasting_cancellation(work: asyncio.Future[T]) -> T:
    """Await ``work`` to its end even if cancelled meanwhile, then pass the cancellation on.

    A thread cannot be stopped. Waiting for it frees the slot (a thread, one
    Argon2id run's memory) only when it is really free, and keeps the caller's
    clean-up (discarding an upload's bodies, say) from running while the work
    is still recording them.
    """
    cancelled = False
    while not work.done():
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return work.result()


def _with_kdf_threads(threads: ThreadPoolExecutor, work: Callable[[], T]) -> T:
    def derive_there(derive: Callable[[], bytes]) -> bytes:
        return threads.submit(derive).result()

    with crypto.kdf_runner(derive_there):
        return work()


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

    def spend(self, amount: int = 1) -> None:
        """Count ``amount`` without refusing: for work already checked and now done."""
        with self._lock:
            self._roll()
            self._used += amount


class Slots:
    """At most ``limit`` holders at once; one more waits up to ``wait_seconds``, then is refused.

    Uploads hold a slot while their body arrives and is cleaned: each holds a
    thread of its own and some plaintext meanwhile, so their number bounds both.
    A waiting upload holds neither, only its unread request: a burst of sources
    waits a little instead of meeting the busy page, and stalled uploads that
    hold every slot cost newcomers that wait, never a thread.
    """

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self._free = asyncio.Semaphore(limit)
        self._wait_seconds = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._free.acquire()
        except TimeoutError as e:
            raise ServiceBusy() from e
        try:
            yield
        finally:
            self._free.release()


class Admission:
    def __init__(
        self, *, submissions: int, bytes_: int, new_codenames: int, uploads: int, upload_wait_seconds: float
    ) -> None:
        self.submissions = HourlyBudget(submissions)
        self.bytes = HourlyBudget(bytes_)
        self.new_codenames = HourlyBudget(new_codenames)
        self.uploads = Slots(uploads, upload_wait_seconds)
