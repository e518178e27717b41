"""Languages of the source interface: gettext catalogs chosen per request.

The language comes from a plain ``?lang=`` link (remembered in a cookie), or
else from Accept-Language. Catalogs are the .po files in app/translations,
compiled in memory when first used (no build step).
"""

from __future__ import annotations

import gettext as gettext_module
import io
import logging
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"en": "English", "es": "Español", "pt_BR": "Português", "fr": "Français"}
RTL_LANGUAGES = {"ar", "fa", "he", "ur", "ps", "ku"}
COOKIE_NAME = "buzon_lang"

_log = logging.getLogger("buzon.i18n")
_current: ContextVar[str] = ContextVar("buzon_locale", default=DEFAULT_LOCALE)


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@cache
def _catalog(locale: str) -> gettext_module.NullTranslations:
    """The locale's catalog, read from its ``.po`` file and compiled in memory.

    There is no ``.mo`` to build: a wheel, an editable install and a clone all
    carry the ``.po`` files, so each of them serves every language without a
    build step that someone installing with plain pip would not know to run.
    Compiling four small catalogs takes milliseconds, once per process.
    """
    if locale == DEFAULT_LOCALE:
        return gettext_module.NullTranslations()
    try:
        return compile_catalog(locale)
    except (OSError, ValueError):
        # A broken install (a package without its .po files, say) shows English, never an
        # error page, to a source who may not come back; `buzon doctor` names the locale.
        _log.warning("the %s catalog cannot be read: its pages are shown in English", locale)
        return gettext_module.NullTranslations()


def compile_catalog(locale: str) -> Translations:
    """Read and compile one shipped catalog; OSError or ValueError when it is missing or broken."""
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def current_locale() -> str:
    return _current.get()


def text_direction() -> str:
    return "rtl" if current_locale().split("_")[0] in RTL_LANGUAGES else "ltr"


def html_lang() -> str:
    return current_locale().replace("_", "-")


def gettext(message: str) -> str:
    return _catalog(current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(current_locale()).ngettext(singular, plural, n)


def format_number(value: int) -> str:
    """A whole number as the reader writes it: 100,000 in English, 100.000 in Portuguese."""
    return format_decimal(value, locale=current_locale())


def _from_accept_language(header: str) -> str:
    weighted = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag:
            weighted.append((-quality, position, tag.strip().replace("-", "_")))
    for _, _, tag in sorted(weighted):
        exact = {code.lower(): code for code in LOCALE_NAMES}.get(tag.lower())
        if exact:
            return exact
        # "es-MX" finds "es" and a bare "pt" finds "pt_BR": same language, nearest region.
        language = tag.split("_")[0].lower()
        for code in LOCALE_NAMES:
            if code.split("_")[0].lower() == language:
                return code
    return DEFAULT_LOCALE


def choose_locale(query_lang: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query_lang, cookie):
        if candidate in LOCALE_NAMES:
            return candidate
    # A bare "pt" or "es-MX" in Accept-Language still finds pt_BR or es.
    return _from_accept_language(accept_language or "")


class LocaleMiddleware:
    """Sets the request's language; a ``?lang=`` link is remembered in a cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        asked = connection.query_params.get("lang")
        locale = choose_locale(asked, connection.cookies.get(COOKIE_NAME), connection.headers.get("accept-language"))
        token = _current.set(locale)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("content-language", html_lang())
                if asked in LOCALE_NAMES:
                    headers.append("set-cookie", f"{COOKIE_NAME}={locale}; HttpOnly; SameSite=Strict; Path=/")
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            _current.reset(token)
