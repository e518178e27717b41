"""Periodic jobs that run beside an app for as long as it serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from anyio import to_thread
from fastapi import FastAPI

logger = logging.getLogger("buzon.background")

Job = Callable[[], object]


def run_periodically(
    app: FastAPI, prepare: Callable[[], Job], *, every_seconds: float, run_at_start: bool, name: str
) -> None:
    """Call ``prepare()`` at start-up, then the job it returns every ``every_seconds``.

    Both run in a worker thread. A failing run is logged by ``name`` only (a
    message could name a file or a row) and the next one runs on schedule.
    """
    previous = app.router.lifespan_context

    async def loop(job: Job) -> None:
        delay = 0.0 if run_at_start else every_seconds
        while True:
            await asyncio.sleep(delay)
            delay = every_seconds
            try:
                await to_thread.run_sync(job)
            except Exception:
                logger.warning("%s failed", name, exc_info=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(loop(await to_thread.run_sync(prepare)))
        try:
            async with previous(app):
                yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.router.lifespan_context = lifespan
