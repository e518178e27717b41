"""Running retention in the editor app: once at start-up, then hourly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app.services.retention import apply_retention
from app.settings import Settings
from app.storage import BlobStore

INTERVAL_SECONDS = 3600

logger = logging.getLogger("buzon.retention")


def _run_once(factory: sessionmaker[Session], store: BlobStore, retention_days: int) -> None:
    with factory() as session:
        apply_retention(session=session, store=store, retention_days=retention_days)


async def _loop(app: FastAPI, retention_days: int) -> None:
    while True:
        try:
            await to_thread.run_sync(_run_once, app.state.session_factory, app.state.store, retention_days)
        except Exception:
            # Only the exception's type: a message could name a file or row.
            logger.warning("retention run failed", exc_info=False)
        await asyncio.sleep(INTERVAL_SECONDS)


def install_retention(app: FastAPI) -> None:
    """Start the retention loop with the app, if ``retention_days`` is set."""
    settings: Settings = app.state.settings
    retention_days = settings.retention_days
    if retention_days is None:
        return
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_loop(app, retention_days))
        try:
            async with previous(app):
                yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.router.lifespan_context = lifespan
