"""Enrolment of invited editors: passphrase, then a TOTP code, then the account exists.

Between the two steps the new keys wait in process memory (an enrolment
session, 15 minutes); nothing is written until the editor proves the code.
"""

from __future__ import annotations

from functools import partial

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.deps import (
    CSRF_FIELD,
    EnrolmentsDep,
    KdfGateDep,
    SameOrigin,
    SessionFactoryDep,
    SettingsDep,
    TemplatesDep,
    check_csrf,
)
from app.passphrases import MIN_CHARS, suggest, weakness
from app.services import editors, invites
from app.web.admission import EDITOR_KDF_WAIT_SECONDS
from app.web.forms import read_small_form
from app.web.logins import Enrolment
from app.web.totp import totp_setup_context

ENROL_COOKIE = "buzon_enrol"

router = APIRouter()


def _invite_or_404(factory: SessionFactoryDep, token: str) -> tuple[str, bool]:
    with factory() as session:
        invite = invites.get_invite(session=session, token=token)
        return invite.username, invite.is_admin


def _passphrase_page(request: Request, templates: TemplatesDep, username: str, error: str | None) -> Response:
    context = {"username": username, "suggestion": suggest(), "min_chars": MIN_CHARS, "error": error}
    return templates.TemplateResponse(request, "enrol.html", context, status_code=400 if error else 200)


def _totp_page(
    request: Request, templates: TemplatesDep, token: str, username: str, totp_secret: str, *, error: bool
) -> Response:
    context = totp_setup_context(
        username=username, totp_secret=totp_secret, action=f"/invite/{token}/confirm", error=error
    )
    return templates.TemplateResponse(request, "enrol_totp.html", context, status_code=400 if error else 200)


@router.get("/invite/{token}", response_class=HTMLResponse)
def enrol_form(request: Request, token: str, factory: SessionFactoryDep, templates: TemplatesDep) -> Response:
    username, _ = _invite_or_404(factory, token)
    return _passphrase_page(request, templates, username, None)


@router.post("/invite/{token}", response_class=HTMLResponse, dependencies=[SameOrigin])
async def choose_passphrase(
    request: Request,
    token: str,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    kdf_gate: KdfGateDep,
    enrolments: EnrolmentsDep,
) -> Response:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    username, _ = _invite_or_404(factory, token)
    passphrase = form.get("passphrase", "")
    if passphrase != form.get("passphrase_confirm", ""):
        return _passphrase_page(request, templates, username, "The two passphrases differ.")
    problem = await to_thread.run_sync(lambda: weakness(passphrase, username=username))
    if problem:
        return _passphrase_page(request, templates, username, problem)
    prepare = partial(editors.prepare_enrolment, passphrase, settings.editor_kdf)
    pending = await kdf_gate.run(prepare, wait_seconds=EDITOR_KDF_WAIT_SECONDS)
    enrolment = Enrolment(token, pending.public_key, pending.wrapped_secret_key)
    cookie = enrolments.create(username, pending.totp_secret.encode("ascii"), enrolment)
    response = _totp_page(request, templates, token, username, pending.totp_secret, error=False)
    response.set_cookie(ENROL_COOKIE, cookie, httponly=True, samesite="strict", path="/invite")
    return response


@router.post("/invite/{token}/confirm", response_class=HTMLResponse, dependencies=[SameOrigin])
async def confirm_totp(
    request: Request, token: str, factory: SessionFactoryDep, templates: TemplatesDep, enrolments: EnrolmentsDep
) -> Response:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    cookie = request.cookies.get(ENROL_COOKIE)
    held = enrolments.get(cookie)
    if held is None or held.payload.invite_token != token:
        raise invites.InviteInvalid()
    pending = editors.PendingEnrolment(
        public_key=held.payload.public_key,
        wrapped_secret_key=held.payload.wrapped_secret_key,
        totp_secret=held.secret.decode("ascii"),
    )

    def complete() -> str:
        with factory() as session:
            return invites.redeem_invite(
                session=session, token=token, pending=pending, otp=form.get("otp", "")
            ).username

    try:
        username = await to_thread.run_sync(complete)
    except editors.LoginFailed:
        return _totp_page(request, templates, token, held.principal, pending.totp_secret, error=True)
    enrolments.end(cookie)
    response = templates.TemplateResponse(request, "enrolled.html", {"username": username})
    response.delete_cookie(ENROL_COOKIE, path="/invite", httponly=True, samesite="strict")
    return response
