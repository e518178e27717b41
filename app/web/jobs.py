"""Periodic jobs that run beside an app for as long as it serves: retention, the store sweep, notices."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator, Callable

from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utc_day_and_second, utc_today
from app.services import anchors
from app.services.deletion import scrub_database
from app.services.housekeeping import restamp_rows, sweep_store
from app.services.notifications import NewTipNotifier, mailer_from
from app.services.retention import apply_retention
from app.settings import Settings
from app.storage import BlobStore, normalise_times

logger = logging.getLogger("buzon.jobs")

Job = Callable[[], object]


def run_periodically(
    app: FastAPI,
    prepare: Callable[[], Job],
    *,
    every_seconds: float,
    run_at_start: bool,
    name: str,
    run_at_stop: bool = False,
) -> None:
    """Call ``prepare()`` at start-up, then the job it returns every ``every_seconds``.

    All run in a worker thread. A failing run is logged by ``name`` only (a
    message could name a file or a row) and the next one runs on schedule.
    """
    previous = app.router.lifespan_context

    async def run(job: Job) -> None:
        try:
            await to_thread.run_sync(job)
        except Exception:
            logger.warning("%s failed", name, exc_info=False)

    async def loop(job: Job) -> None:
        delay = 0.0 if run_at_start else every_seconds
        while True:
            await asyncio.sleep(delay)
            delay = every_seconds
            await run(job)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        job = await to_thread.run_sync(prepare)
        task = asyncio.create_task(loop(job))
        try:
            async with previous(app):
                yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if run_at_stop:
                await run(job)

    app.router.lifespan_context = lifespan


INTERVAL_SECONDS = 3600


def _run_once(factory: sessionmaker[Session], store: BlobStore, retention_days: int) -> None:
    with factory() as session:
        apply_retention(session=session, store=store, retention_days=retention_days)


def install_retention(app: FastAPI, settings: Settings, factory: sessionmaker[Session], store: BlobStore) -> None:
    """Run retention at start-up and then hourly, if ``retention_days`` is set."""
    retention_days = settings.retention_days
    if retention_days is None:
        return

    def job() -> None:
        _run_once(factory, store, retention_days)

    run_periodically(app, lambda: job, every_seconds=INTERVAL_SECONDS, run_at_start=True, name="retention run")


def install_anchoring(app: FastAPI, settings: Settings, factory: sessionmaker[Session]) -> None:
    """Hourly, once past today's randomly drawn time, anchor the past days' receipts (docs/evidence.md).

    Each UTC day draws its own second of the day, so the authority (and whoever
    watches the connection) learns nothing from when the newsroom stamps. A day
    the authority fails is tried again at the next hourly run.
    """
    authority = anchors.authority_from(
        url=settings.tsa_url,
        ca_file=settings.tsa_ca_file,
        via_tor=settings.tsa_via_tor,
        socks_url=settings.tor_socks_url,
    )
    if authority is None:
        return
    drawn: dict[dt.date, int] = {}

    def job() -> None:
        today, second = utc_day_and_second()
        if second < drawn.setdefault(today, secrets.randbelow(86400)):
            return
        with factory() as session:
            anchors.anchor_past_days(session, authority=authority, today=today)

    run_periodically(app, lambda: job, every_seconds=INTERVAL_SECONDS, run_at_start=True, name="anchoring run")


NORMALISE_EVERY_SECONDS = 60


def install_store_upkeep(app: FastAPI, settings: Settings, store: BlobStore) -> None:
    """Every minute and at shutdown, reset the data directory's file times; daily, top up the pool.

    docs/storage.md, "Times" and "The pool of free slots". The top-up runs in
    the first minute of each UTC day, so a batch's birth time says only that
    day. Both apps install this; a second pass in the same minute is harmless.
    """
    filled_on = [utc_today()]

    def job() -> None:
        if utc_today() not in filled_on:
            store.fill_pool()
            filled_on[:] = [utc_today()]
        normalise_times(settings.data_dir)

    every = NORMALISE_EVERY_SECONDS
    run_periodically(app, lambda: job, every_seconds=every, run_at_start=True, run_at_stop=True, name="store upkeep")


def install_store_sweep(app: FastAPI, factory: sessionmaker[Session], store: BlobStore) -> None:
    """Hourly, remove bodies that a crashed process (perhaps another one) left unrecorded, and truncate the WAL.

    ``buzon serve`` sweeps once before it starts serving; this catches crashes
    of other processes that share the store and are not restarted.
    """

    restamped_on: list[dt.date] = []

    def job() -> None:
        sweep_store(factory, store)
        # A deletion whose WAL checkpoint long readers kept busy is finished here.
        with factory() as session:
            scrub_database(session)
            engine = session.get_bind()
        # Once a UTC day: PostgreSQL's transaction ids then order at most one day's rows.
        if isinstance(engine, Engine) and utc_today() not in restamped_on and restamp_rows(engine):
            restamped_on[:] = [utc_today()]

    run_periodically(app, lambda: job, every_seconds=INTERVAL_SECONDS, run_at_start=False, name="store sweep")


def install_notifications(app: FastAPI, settings: Settings, factory: sessionmaker[Session]) -> None:
    """Run the hourly (or slower) check with the editor app, if SMTP is configured."""
    mailer = mailer_from(settings)
    if mailer is None:
        return

    def prepare() -> Callable[[], bool]:
        return NewTipNotifier(factory, mailer).check

    every = settings.notify_every_hours * 3600
    run_periodically(app, prepare, every_seconds=every, run_at_start=False, name="new-activity notice")
