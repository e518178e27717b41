"""Every shipped language has every message, consistently, and the build compiled it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app.web.i18n import LOCALE_NAMES, TRANSLATIONS_DIR, choose_locale
from app.web.i18n import _catalog as i18n_catalog

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(set(LOCALE_NAMES) - {"en"})
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")
TAG = re.compile(r"</?[a-z]+[^>]*>")


def _extracted() -> set[str]:
    with (TRANSLATIONS_DIR / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    return {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map)
    }


def _catalog(locale: str) -> Catalog:
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=locale)


def test_extraction_finds_the_interface() -> None:
    messages = _extracted()
    assert "Send securely" in messages
    assert "The submission is too large" in messages  # from app/web/error_pages.py via N_()
    assert len(messages) > 60


@pytest.mark.parametrize("locale", SHIPPED)
def test_every_message_is_translated(locale: str) -> None:
    catalog = _catalog(locale)
    missing = sorted(m for m in _extracted() if not (catalog.get(m) and catalog.get(m).string))  # type: ignore[union-attr]
    assert missing == [], f"{locale} lacks translations; update the .po (pybabel update) and translate"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert fuzzy == []


@pytest.mark.parametrize("locale", SHIPPED)
def test_translations_keep_placeholders_and_markup(locale: str) -> None:
    for message in _catalog(locale):
        if not message.id or not isinstance(message.id, str) or not isinstance(message.string, str):
            continue
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id
        assert sorted(TAG.findall(message.id)) == sorted(TAG.findall(message.string)), message.id


@pytest.mark.parametrize("locale", SHIPPED)
def test_the_served_catalog_is_the_source(locale: str) -> None:
    served = i18n_catalog(locale)
    checked = 0
    for message in _catalog(locale):
        if message.id and isinstance(message.id, str) and isinstance(message.string, str):
            assert served.gettext(message.id) == message.string
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        (None, None, None, "en"),
        (None, None, "es-MX,es;q=0.9,en;q=0.8", "es"),
        (None, None, "pt-BR", "pt_BR"),
        (None, None, "pt", "pt_BR"),
        (None, None, "de-DE,fr;q=0.5", "fr"),
        (None, None, "en;q=0.1,fr;q=0.9", "fr"),
        (None, None, "zz, q=garbage;;", "en"),
        (None, "fr", "es", "fr"),
        ("es", "fr", "pt", "es"),
        ("xx", None, None, "en"),
    ],
)
def test_choosing_the_language(query: str | None, cookie: str | None, header: str | None, expected: str) -> None:
    assert choose_locale(query, cookie, header) == expected
