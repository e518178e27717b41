"""WCAG 2.1 AA basics for the source pages: labels, contrast, keyboard reach."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.support import LiveServer, codename_in, submit_tip

CSS = (Path(__file__).resolve().parents[2] / "app" / "static" / "style.css").read_text()


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        if tag in ("input", "textarea", "select") and a.get("type") != "hidden":
            self.controls.append(a)


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _var(name: str) -> str:
    match = re.search(rf"--{name}: (#[0-9a-f]{{6}})", CSS)
    assert match is not None, name
    return match.group(1)


def test_text_colours_meet_aa_contrast() -> None:
    pairs = [
        ("ink", "paper"),
        ("muted", "paper"),
        ("accent", "paper"),
        ("warn", "paper"),
        ("bad", "paper"),
    ]
    for fg, bg in pairs:
        assert _contrast(_var(fg), _var(bg)) >= 4.5, (fg, bg)
    assert _contrast("#ffffff", _var("accent")) >= 4.5  # button text
    for tint in ("#eef5f2", "#fbeeee", "#fdf5e6"):  # notice backgrounds
        assert _contrast(_var("ink"), tint) >= 4.5
        assert _contrast(_var("muted"), tint) >= 4.5


def test_every_control_has_a_label(live_server: LiveServer, client: httpx.Client) -> None:
    pages = [client.get(f"{live_server.source_url}{p}").text for p in ("/", "/submit", "/login")]
    codename = codename_in(submit_tip(live_server, client, "labels").text)
    live_server.post_form(client, live_server.source_url, "/login", "/login", {"codename": codename})
    pages.append(client.get(f"{live_server.source_url}/home").text)
    for page in pages:
        parser = _Form()
        parser.feed(page)
        for control in parser.controls:
            assert control.get("id") in parser.label_for, control


def test_keyboard_users_can_skip_to_content_and_see_focus(live_server: LiveServer, client: httpx.Client) -> None:
    page = client.get(f"{live_server.source_url}/").text
    assert '<a class="skip" href="#main">' in page
    assert '<main id="main">' in page
    assert ":focus-visible" in CSS
    assert "outline: none" not in CSS
