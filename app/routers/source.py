"""Source interface routes. Nothing here reads the client's address."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import ClientDisconnect

from app.deps import CsrfQuery, SameOrigin, SessionFactoryDep, SettingsDep, StoreDep, TemplatesDep
from app.errors import MalformedSubmission, ServiceOffline, SubmissionError, SubmissionTooLarge
from app.ingest import Limits, SealedItem, SubmissionIngest, boundary_from_content_type
from app.services import keys
from app.services.submissions import record_new_source_submission
from app.settings import Settings

router = APIRouter()

# After a refused upload the rest of the body is read and dropped, up to this
# much, so the browser gets to show the error page instead of a reset.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


@router.get("/", response_class=HTMLResponse)
def index(request: Request, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "index.html")


@router.get("/submit", response_class=HTMLResponse)
def submit_form(request: Request, templates: TemplatesDep, settings: SettingsDep) -> Response:
    return templates.TemplateResponse(request, "submit.html", {"limits": _limits(settings)})


@router.post("/submit", response_class=HTMLResponse, dependencies=[SameOrigin, CsrfQuery])
async def submit(
    request: Request, templates: TemplatesDep, settings: SettingsDep, factory: SessionFactoryDep, store: StoreDep
) -> Response:
    public_key = await to_thread.run_sync(_active_key_or_offline, factory)
    limits = _limits(settings)
    ingest = SubmissionIngest(
        boundary=boundary_from_content_type(request.headers.get("content-type")),
        newsroom_public_key=public_key,
        store=store,
        limits=limits,
    )
    items = await _receive(request, ingest, limits)
    try:
        codename = await to_thread.run_sync(_record, factory, settings, items)
    except BaseException:
        ingest.abort()
        raise
    return templates.TemplateResponse(request, "submitted.html", {"codename": codename})


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_total_bytes=settings.max_submission_bytes,
        max_message_chars=settings.max_message_chars,
        max_files=settings.max_files_per_submission,
    )


def _active_key_or_offline(factory: sessionmaker[Session]) -> bytes:
    # Fail closed: without a valid newsroom key no tip is accepted at all.
    try:
        with factory() as session:
            return keys.active_public_key(session)
    except keys.NotInitialised as e:
        raise ServiceOffline() from e


class _RequestBody:
    """The request body as raw ASGI messages, remembering whether it has ended.

    Reading ``receive`` directly (rather than ``request.stream()``) lets a
    refused upload drain the rest without waiting for bytes that never come.
    """

    def __init__(self, request: Request) -> None:
        self._receive = request.receive
        self.ended = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.ended:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self.ended = not message.get("more_body", False)
            yield message.get("body", b"")

    async def drain(self, limit: int) -> None:
        dropped = 0
        with contextlib.suppress(ClientDisconnect):
            async for chunk in self.chunks():
                dropped += len(chunk)
                if dropped > limit:
                    return


async def _receive(request: Request, ingest: SubmissionIngest, limits: Limits) -> list[SealedItem]:
    """Feed the body to the ingest as it arrives; on any failure remove what it wrote."""
    declared = request.headers.get("content-length", "")
    body = _RequestBody(request)
    try:
        if declared.isdigit() and int(declared) > limits.max_total_bytes:
            raise SubmissionTooLarge()
        async for chunk in body.chunks():
            if chunk:
                await to_thread.run_sync(ingest.feed, chunk)
        return await to_thread.run_sync(ingest.finish)
    except SubmissionError:
        ingest.abort()
        await body.drain(DRAIN_LIMIT_BYTES)
        raise
    except ClientDisconnect as e:
        ingest.abort()
        raise MalformedSubmission() from e
    except BaseException:
        ingest.abort()
        raise


def _record(factory: sessionmaker[Session], settings: Settings, items: list[SealedItem]) -> str:
    with factory() as session:
        return record_new_source_submission(
            session=session,
            items=items,
            pepper=keys.load_pepper(settings.pepper_path),
            kdf=keys.codename_kdf(session),
        )
