"""Language plumbing that no shipped language exercises: right-to-left layout."""

from __future__ import annotations

from pathlib import Path

from app.web import i18n


def test_right_to_left_languages_get_rtl_direction() -> None:
    token = i18n._current.set("ar")
    try:
        assert i18n.text_direction() == "rtl"
        assert i18n.html_lang() == "ar"
    finally:
        i18n._current.reset(token)
    assert i18n.text_direction() == "ltr"


def test_stylesheet_uses_logical_properties_only() -> None:
    # Physical left/right would not mirror for a right-to-left language.
    css = (Path(__file__).resolve().parents[2] / "app" / "static" / "style.css").read_text()
    for physical in ("margin-left", "margin-right", "padding-left", "padding-right", "border-left", "text-align: left"):
        assert physical not in css
