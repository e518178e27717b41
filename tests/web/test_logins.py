"""The in-memory session store: expiry, logout, and what it keeps."""

from __future__ import annotations

from app.web.logins import LoginStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_idle_time_and_activity_extends_them() -> None:
    clock = Clock()
    store = LoginStore[None](idle_seconds=120, max_seconds=3600, clock=clock)
    cookie = store.create("source-1", b"secret key bytes", None)
    clock.now += 100
    session = store.get(cookie)
    assert session is not None
    assert session.secret == b"secret key bytes"
    clock.now += 100  # 200 s since creation but only 100 s idle
    assert store.get(cookie) is not None
    clock.now += 121
    assert store.get(cookie) is None
    assert len(store) == 0


def test_sessions_end_at_their_absolute_lifetime_however_active() -> None:
    clock = Clock()
    store = LoginStore[None](idle_seconds=120, max_seconds=300, clock=clock)
    cookie = store.create("editor", b"k", None)
    for _ in range(3):
        clock.now += 100
        assert store.get(cookie) is not None
    clock.now += 100
    assert store.get(cookie) is None


def test_end_and_end_all_for() -> None:
    store = LoginStore[None](idle_seconds=60, max_seconds=60)
    a1, a2, b = store.create("a", b"1", None), store.create("a", b"2", None), store.create("b", b"3", None)
    store.end(a1)
    assert store.get(a1) is None
    store.end_all_for("a")
    assert store.get(a2) is None
    assert store.get(b) is not None


def test_the_store_holds_only_ciphertext_of_the_secret() -> None:
    store = LoginStore[None](idle_seconds=60, max_seconds=60)
    secret = b"RAW-REPLY-KEY-MARKER-0123456789"
    cookie = store.create("p", secret, None)
    entries = store._entries  # white-box: what a memory image of the store would show
    assert len(entries) == 1
    ((sid, entry),) = entries.items()
    assert secret not in entry.sealed_secret
    assert cookie.encode() not in sid


def test_malformed_cookies_are_ignored() -> None:
    store = LoginStore[None](idle_seconds=60, max_seconds=60)
    store.create("p", b"s", None)
    for cookie in (None, "", "x" * 100, "not base64!!", "AAAA", "é"):
        assert store.get(cookie) is None


def test_scratch_is_per_session_and_dropped_with_it() -> None:
    clock = Clock()
    store = LoginStore[None](idle_seconds=120, max_seconds=3600, clock=clock)
    a, b = store.create("a", b"1", None), store.create("b", b"2", None)
    scratch_a = store.scratch(a)
    assert scratch_a is not None
    scratch_a["cache"] = {"item": "text"}
    assert store.scratch(a) == {"cache": {"item": "text"}}
    assert store.scratch(b) == {}
    assert store.scratch("not a cookie") is None
    store.end(a)
    assert store.scratch(a) is None
    clock.now += 121
    assert store.scratch(b) is None
    assert len(store) == 0


def test_a_login_keeps_its_payload_beside_the_sealed_secret() -> None:
    store = LoginStore[tuple[str, int]](idle_seconds=60, max_seconds=60)
    cookie = store.create("editor-1", b"keys", ("epoch", 7))
    login = store.get(cookie)
    assert login is not None
    assert (login.principal, login.payload, login.secret) == ("editor-1", ("epoch", 7), b"keys")
    assert "keys" not in repr(login)


def test_one_login_per_principal_when_asked() -> None:
    store = LoginStore[None](idle_seconds=60, max_seconds=60, one_per_principal=True)
    first, second = store.create("source-1", b"k", None), store.create("source-1", b"k", None)
    other = store.create("source-2", b"j", None)
    assert store.get(first) is None
    assert store.get(second) is not None
    assert store.get(other) is not None
    assert len(store) == 2


def test_expiry_follows_last_use_and_age_independently() -> None:
    clock = Clock()
    store = LoginStore[None](idle_seconds=100, max_seconds=250, clock=clock)
    old, kept_busy, idle = (store.create(p, b"s", None) for p in ("old", "busy", "idle"))
    clock.now += 90
    assert store.get(old) is not None
    assert store.get(kept_busy) is not None
    clock.now += 90  # idle: 180 s unused; old and busy: 90 s
    assert store.get(idle) is None
    assert store.get(kept_busy) is not None
    clock.now += 80  # 260 s since all three were made: past the absolute lifetime, however busy
    assert store.get(kept_busy) is None
    assert store.get(old) is None
    assert len(store) == 0
