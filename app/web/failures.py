"""Unexpected errors, counted instead of logged.

Starlette answers an unhandled exception with the error page and then raises
it again, so that uvicorn logs it with its traceback. journald or Docker puts a
timestamp on that line, and the traceback can name the route and what was
sent: any bug a source can trigger would date their request. Here the
exception stops: each one only adds to a count, and the count is logged, as a
fixed line, once an hour when it is not zero and when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.types import ASGIApp, Receive, Scope, Send

REPORT_EVERY_SECONDS = 3600

logger = logging.getLogger("buzon.failures")


class FailureCount:
    def __init__(self) -> None:
        self.unreported = 0

    def add(self) -> None:
        self.unreported += 1

    def report(self) -> None:
        if self.unreported:
            logger.warning("%d request(s) failed unexpectedly since the last report", self.unreported)
            self.unreported = 0

    @contextlib.asynccontextmanager
    async def reporting(self, every_seconds: float = REPORT_EVERY_SECONDS) -> AsyncIterator[None]:
        """For the app's lifespan: report hourly, and once more at shutdown."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(every_seconds)
                self.report()

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.report()


class SwallowFailures:
    """The outermost layer of an app: an HTTP request's exception ends here, counted.

    By then Starlette has sent the error page (or the response had begun and
    can only be cut short). Lifespan errors still propagate, so a server that
    cannot start says so.
    """

    def __init__(self, app: ASGIApp, failures: FailureCount) -> None:
        self.app = app
        self.failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception:
            self.failures.add()
