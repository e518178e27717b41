"""The two ASGI apps, each built from one Settings object.

The source interface and the editor portal share no routes, cookies or
templates; the source app never imports the editor router.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from app.db.session import make_engine, make_session_factory
from app.deps import issue_csrf_token
from app.intake.filebody import MemoryBudget, StripPolicy
from app.media.sandbox import Sandbox
from app.settings import Settings
from app.storage import BlobStore
from app.web import i18n
from app.web.admission import Admission, KdfGate
from app.web.csrf import CsrfCookieMiddleware, CsrfTokens, load_or_create_secret
from app.web.error_pages import install_error_pages
from app.web.failures import FailureCount, SwallowFailures
from app.web.logins import EditorLogins, Enrolments, SourceLogins
from app.web.security import OnionLocationMiddleware, SecurityHeadersMiddleware, is_off_onion
from app.web.upload import drain_unread_body

SOURCE_LOGIN_MAX_SECONDS = 12 * 3600
# An upload waits this long for strip-buffer memory before it is refused.
# An invited editor has this long between choosing a passphrase and proving a TOTP code.
ENROLMENT_SECONDS = 15 * 60
# Inside the package, so that an installed wheel serves the same pages as a clone.
PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"


def _templates(interface: str) -> Jinja2Templates:
    loader = ChoiceLoader([FileSystemLoader(TEMPLATES_DIR / interface), FileSystemLoader(TEMPLATES_DIR / "shared")])
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        csrf_token=issue_csrf_token,
        current_locale=i18n.current_locale,
        format_number=i18n.format_number,
        html_lang=i18n.html_lang,
        text_direction=i18n.text_direction,
    )
    return Jinja2Templates(env=env)


async def _healthz() -> PlainTextResponse:
    # For the container's HEALTHCHECK: a constant, so it tells a visitor nothing
    # (no version, counts or time) and never looks at who asked.
    return PlainTextResponse("ok")


def _during_lifespan(app: FastAPI, context: Callable[[], contextlib.AbstractAsyncContextManager[None]]) -> None:
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with context(), previous(app):
            yield

    app.router.lifespan_context = lifespan


class _BuzonApp(FastAPI):
    """FastAPI with one more layer outside Starlette's own error middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        return SwallowFailures(super().build_middleware_stack(), self.state.failures)


def _base_app(
    settings: Settings,
    interface: str,
    *,
    csrf_cookie: str,
    before_error_page: Callable[[Request], Awaitable[None]] | None = None,
) -> FastAPI:
    # No OpenAPI or docs pages: they are scripts and third-party assets.
    app = _BuzonApp(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.failures = FailureCount()
    _during_lifespan(app, app.state.failures.reporting)
    engine = make_engine(settings.resolved_database_url)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.store = BlobStore(settings.store_dir, settings.store_pool)
    app.state.sandbox = Sandbox(settings.sandbox_limits)
    from app.web.jobs import install_store_upkeep

    install_store_upkeep(app, settings, app.state.store)
    app.state.templates = _templates(interface)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    app.state.csrf = CsrfTokens(
        load_or_create_secret(settings.csrf_key_path), lifetime_hours=settings.csrf_lifetime_hours
    )
    app.state.csrf_cookie = csrf_cookie
    app.state.kdf_gate = KdfGate(settings.max_concurrent_kdf)
    _during_lifespan(app, app.state.kdf_gate.running)
    app.add_middleware(CsrfCookieMiddleware, cookie_name=csrf_cookie)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    install_error_pages(app, app.state.templates, before_error_page)
    return app


def create_source_app(settings: Settings) -> FastAPI:
    from app.routers import source

    app = _base_app(settings, "source", csrf_cookie="buzon_csrf", before_error_page=drain_unread_body)
    app.add_middleware(OnionLocationMiddleware, onion_address=settings.onion_address)
    app.add_middleware(i18n.LocaleMiddleware)
    app.state.templates.env.globals.update(
        locale_names=i18n.LOCALE_NAMES,
        onion_address=settings.onion_address,
        off_onion=lambda request: is_off_onion(request.headers, settings.onion_address),
    )
    app.state.source_logins = SourceLogins(
        idle_seconds=settings.source_session_idle_minutes * 60,
        max_seconds=SOURCE_LOGIN_MAX_SECONDS,
        one_per_principal=True,
    )
    app.state.admission = Admission(
        submissions=settings.max_submissions_per_hour,
        bytes_=settings.max_bytes_per_hour,
        new_codenames=settings.max_new_codenames_per_hour,
        uploads=settings.max_concurrent_uploads,
        upload_wait_seconds=settings.upload_slot_wait_seconds,
    )
    app.state.strip_policy = StripPolicy(
        max_bytes=settings.max_strip_bytes,
        budget=MemoryBudget(settings.strip_memory_budget_bytes),
        sandbox=app.state.sandbox,
    )
    app.include_router(source.router)
    return app


def create_editor_app(settings: Settings) -> FastAPI:
    from app.routers import accounts, admin, approvals, editor, export, verify
    from app.services.editors import Authenticator
    from app.web.jobs import install_anchoring, install_notifications, install_retention, install_store_sweep
    from app.web.throttle import LoginThrottle

    app = _base_app(settings, "editor", csrf_cookie="buzon_editor_csrf")
    app.state.authenticator = Authenticator(settings.editor_kdf)
    app.state.editor_logins = EditorLogins(
        idle_seconds=settings.editor_session_idle_minutes * 60,
        max_seconds=settings.editor_session_max_hours * 3600,
    )
    app.state.login_throttle = LoginThrottle(
        max_failures=settings.editor_login_max_failures,
        lockout_seconds=settings.editor_login_lockout_minutes * 60,
        attempts_per_minute=settings.editor_logins_per_minute,
    )
    app.state.enrolments = Enrolments(idle_seconds=ENROLMENT_SECONDS, max_seconds=ENROLMENT_SECONDS)
    editor.install(app)
    app.include_router(accounts.router)
    app.include_router(admin.router)
    app.include_router(verify.router)
    app.include_router(approvals.router)
    app.include_router(export.router)
    factory, store = app.state.session_factory, app.state.store
    install_notifications(app, settings, factory)
    install_retention(app, settings, factory, store)
    install_store_sweep(app, factory, store)
    install_anchoring(app, settings, factory)
    return app
