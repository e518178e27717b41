"""Source interface routes. Nothing here reads the client's address."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from app import crypto
from app.codenames import generate_codename
from app.deps import (
    CSRF_FIELD,
    AdmissionDep,
    CsrfQuery,
    DbDep,
    KdfGateDep,
    SameOrigin,
    SessionFactoryDep,
    SettingsDep,
    SourceLoginsDep,
    StoreDep,
    StripPolicyDep,
    TemplatesDep,
    check_csrf,
)
from app.errors import CodenameNotRecognised, NotFound, SourceLoginExpired
from app.intake.ingest import HONEYPOT_FIELD, Limits, SealedItem, SubmissionIngest, boundary_from_content_type
from app.services import keys, replies, sources, submissions
from app.settings import MIB, Settings
from app.web import i18n
from app.web.forms import read_small_form
from app.web.logins import Login
from app.web.upload import Pace, receive_submission

COOKIE_NAME = "buzon_source"
_ROW_ID = re.compile("[0-9a-f]{32}")
# A new source's codename is derived after their upload has arrived; rather
# than lose the upload to a busy page, wait longer for a KDF slot. It keeps
# normal priority: busy cores (uploads, say) could starve a low-priority one
# while the source waits for the one page that shows their codename. Each costs
# an upload and a share of the hourly budget, so these make no cheap flood.
NEW_SOURCE_KDF_WAIT_SECONDS = 120.0

router = APIRouter()


SourceLogin = Login[None]


def optional_source(request: Request, logins: SourceLoginsDep) -> SourceLogin | None:
    """The logged-in source, or None; a cookie whose login ended gets the expiry page."""
    cookie = request.cookies.get(COOKIE_NAME)
    login = logins.get(cookie)
    if cookie and login is None:
        raise SourceLoginExpired()
    return login


def require_source(login: Annotated[SourceLogin | None, Depends(optional_source)]) -> SourceLogin:
    if login is None:
        raise SourceLoginExpired()
    return login


MaybeSource = Annotated[SourceLogin | None, Depends(optional_source)]
CurrentSource = Annotated[SourceLogin, Depends(require_source)]


@router.get("/", response_class=HTMLResponse)
def index(request: Request, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "index.html")


@router.get("/tor", response_class=HTMLResponse)
def tor_guide(request: Request, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "tor.html")


@router.get("/submit", response_class=HTMLResponse)
def submit_form(request: Request, templates: TemplatesDep, settings: SettingsDep, source: MaybeSource) -> Response:
    if source is not None:
        return RedirectResponse("/home", status_code=303)
    return templates.TemplateResponse(request, "submit.html", {"limits": _limits(settings)})


@router.post("/submit", response_class=HTMLResponse, dependencies=[SameOrigin, CsrfQuery])
async def submit(
    request: Request,
    templates: TemplatesDep,
    settings: SettingsDep,
    factory: SessionFactoryDep,
    store: StoreDep,
    kdf_gate: KdfGateDep,
    admission: AdmissionDep,
    strip_policy: StripPolicyDep,
    source: MaybeSource,
) -> Response:
    declared = request.headers.get("content-length", "")
    # Checked now, counted once the submission is in: a refused or abandoned
    # request spends no submission, and bytes are charged as they arrive.
    admission.submissions.check()
    if source is None:
        admission.new_codenames.check()
    public_key, instance = await to_thread.run_sync(_intake_keys, factory)
    limits = _limits(settings)
    ingest = SubmissionIngest(
        boundary=boundary_from_content_type(request.headers.get("content-type")),
        newsroom_public_key=public_key,
        instance_fingerprint=instance,
        store=store,
        limits=limits,
        min_message_chars=settings.min_first_message_chars if source is None else 0,
        strip=strip_policy,
    )
    if declared.isdigit():
        ingest.check_room(int(declared))
    pace = Pace(idle_seconds=settings.upload_idle_seconds, min_bytes_per_second=settings.upload_min_bytes_per_second)
    async with admission.uploads.hold():
        items = await receive_submission(request, ingest, limits, admission.bytes.take, pace)
    try:
        if ingest.fields.get(HONEYPOT_FIELD):
            # A bot filled the hidden field: it gets what looks like success.
            ingest.abort()
            return templates.TemplateResponse(request, "submitted.html", {"codename": _decoy_codename()})
        if source is not None:
            await to_thread.run_sync(_record_follow_up, factory, items, source.principal)
            codename = None
        else:
            admission.new_codenames.take()
            record = partial(_record_new_source, factory, settings, items)
            codename = await kdf_gate.run(record, wait_seconds=NEW_SOURCE_KDF_WAIT_SECONDS, low_priority=False)
    except BaseException:
        ingest.abort()
        raise
    admission.submissions.spend()
    unstripped = [name for name, outcome in ingest.sanitised if outcome.may_hide_data]
    context = {"codename": codename, "unstripped": unstripped}
    return templates.TemplateResponse(request, "submitted.html", context)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "login.html")


@router.post("/login", dependencies=[SameOrigin])
async def login(
    request: Request, settings: SettingsDep, factory: SessionFactoryDep, kdf_gate: KdfGateDep, logins: SourceLoginsDep
) -> Response:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    codename = form.get("codename", "")

    def attempt() -> tuple[str, bytes] | None:
        with factory() as session:
            found = sources.find_source(
                session=session,
                codename=codename,
                pepper=keys.load_pepper(settings.pepper_path),
                kdf=keys.codename_kdf(session),
            )
            return None if found is None else (found[0].id, found[1].secret)

    found = await kdf_gate.run(attempt, wait_seconds=settings.kdf_wait_seconds)
    if found is None:
        raise CodenameNotRecognised()
    logins.end(request.cookies.get(COOKIE_NAME))
    source_id, reply_secret = found
    response = RedirectResponse("/home", status_code=303)
    cookie = logins.create(source_id, reply_secret, None)
    response.set_cookie(COOKIE_NAME, cookie, httponly=True, samesite="strict", path="/")
    return response


@router.get("/home", response_class=HTMLResponse)
def home(
    request: Request, templates: TemplatesDep, settings: SettingsDep, db: DbDep, store: StoreDep, source: CurrentSource
) -> Response:
    reply_keys = crypto.keypair_from_secret(source.secret)
    opened = replies.replies_for_source(session=db, store=store, source_id=source.principal, reply_keys=reply_keys)
    replies.mark_read(session=db, source_id=source.principal, reply_ids=[r.id for r in opened])
    context = {"replies": opened, "limits": _limits(settings)}
    return templates.TemplateResponse(request, "home.html", context)


@router.post("/replies/{reply_id}/delete", dependencies=[SameOrigin])
async def delete_reply(request: Request, reply_id: str, factory: SessionFactoryDep, source: CurrentSource) -> Response:
    check_csrf(request, (await read_small_form(request)).get(CSRF_FIELD))
    if not _ROW_ID.fullmatch(reply_id):
        # Not a row id: never sent to the database (PostgreSQL refuses a NUL in a query with an error).
        raise NotFound()

    def delete() -> bool:
        with factory() as session:
            return replies.forget_reply(session=session, source_id=source.principal, reply_id=reply_id)

    if not await to_thread.run_sync(delete):
        raise NotFound()
    return RedirectResponse("/home", status_code=303)


@router.post("/logout", response_class=HTMLResponse, dependencies=[SameOrigin])
async def logout(request: Request, templates: TemplatesDep, logins: SourceLoginsDep) -> Response:
    check_csrf(request, (await read_small_form(request)).get(CSRF_FIELD))
    logins.end(request.cookies.get(COOKIE_NAME))
    response = templates.TemplateResponse(request, "logged_out.html")
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


# --- helpers ---------------------------------------------------------------------------


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_total_bytes=settings.max_submission_bytes,
        max_message_chars=settings.max_message_chars,
        max_files=settings.max_files_per_submission,
        max_strip_bytes=settings.max_strip_bytes,
        reserve_bytes=settings.store_reserve_mib * MIB,
    )


def _intake_keys(factory: sessionmaker[Session]) -> tuple[bytes, str]:
    """The newsroom key to seal to and the instance key's fingerprint for receipts.

    Fail closed: without a valid newsroom key no tip is accepted at all (NotInitialised: the offline page).
    """
    with factory() as session:
        return keys.active_public_key(session), keys.instance_fingerprint(session)


def _record_new_source(factory: sessionmaker[Session], settings: Settings, items: list[SealedItem]) -> str:
    with factory() as session:
        return submissions.record_new_source_submission(
            session=session,
            items=items,
            pepper=keys.load_pepper(settings.pepper_path),
            kdf=keys.codename_kdf(session),
            language=i18n.current_locale(),
        )


def _record_follow_up(factory: sessionmaker[Session], items: list[SealedItem], source_id: str) -> None:
    with factory() as session:
        submissions.record_follow_up(session=session, items=items, source_id=source_id)


def _decoy_codename() -> str:
    return generate_codename()
