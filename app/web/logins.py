"""Logins (editors, sources, enrolments), held in this process's memory only.

The cookie carries a random token. The server indexes sessions by a hash of
it and keeps the session's secret (unlocked newsroom keys for an editor, the
reply key for a source) encrypted under a key derived from it (docs/crypto.md,
"Editor sessions"), so neither a restart nor a memory image without the
cookie yields the secret. A restart logs everyone out.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app import crypto

TOKEN_SIZE = 32

# What a login remembers in the clear beside its sealed secret: an editor's
# session epoch, an enrolment's pending public keys, nothing for a source.
Payload = TypeVar("Payload")


@dataclass(frozen=True, repr=False)
class Login(Generic[Payload]):
    principal: str
    payload: Payload
    secret: bytes

    def __repr__(self) -> str:
        return f"Login({self.principal!r})"


@dataclass
class _Entry(Generic[Payload]):
    principal: str
    payload: Payload
    sealed_secret: bytes
    created: float
    last_seen: float
    # Per-session working memory (e.g. decrypted text for search); it lives
    # and dies with the entry, so logout and expiry drop it too.
    scratch: dict[str, object] = field(default_factory=dict)


class LoginStore(Generic[Payload]):
    """Logins with an idle timeout and an absolute lifetime, in seconds.

    Expiry costs O(1) per login however many there are: logins are kept in
    order of last use and in order of creation, so the stale ones are always
    at the front. With ``one_per_principal``, a new login ends the principal's
    earlier ones: one codename logged in again and again holds one login, not
    thousands.
    """

    def __init__(
        self,
        *,
        idle_seconds: float,
        max_seconds: float,
        one_per_principal: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._max = max_seconds
        self._one_per_principal = one_per_principal
        self._entries: dict[bytes, _Entry[Payload]] = {}
        self._by_use: OrderedDict[bytes, None] = OrderedDict()
        self._by_age: OrderedDict[bytes, None] = OrderedDict()
        self._by_principal: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()

    def create(self, principal: str, secret: bytes, payload: Payload) -> str:
        """Store a login and return the cookie value that unlocks it."""
        token = crypto.random_token(TOKEN_SIZE)
        now = self._clock()
        entry = _Entry(principal, payload, crypto.seal_for_session(token, secret), now, now)
        sid = crypto.session_id(token)
        with self._lock:
            self._expire(now)
            if self._one_per_principal:
                self._end_principal(principal)
            self._entries[sid] = entry
            self._by_use[sid] = None
            self._by_age[sid] = None
            self._by_principal.setdefault(principal, set()).add(sid)
        return base64.urlsafe_b64encode(token).decode("ascii")

    def get(self, cookie: str | None) -> Login[Payload] | None:
        token = _decode(cookie)
        if token is None:
            return None
        now = self._clock()
        sid = crypto.session_id(token)
        with self._lock:
            self._expire(now)
            entry = self._entries.get(sid)
            if entry is None:
                return None
            entry.last_seen = now
            self._by_use.move_to_end(sid)
        return Login(entry.principal, entry.payload, crypto.open_for_session(token, entry.sealed_secret))

    def scratch(self, cookie: str | None) -> dict[str, object] | None:
        """A live login's private scratch dict, or None. Memory only, never persisted."""
        token = _decode(cookie)
        if token is None:
            return None
        with self._lock:
            self._expire(self._clock())
            entry = self._entries.get(crypto.session_id(token))
            return None if entry is None else entry.scratch

    def end(self, cookie: str | None) -> None:
        token = _decode(cookie)
        if token is not None:
            with self._lock:
                self._remove(crypto.session_id(token))

    def end_all_for(self, principal: str) -> None:
        with self._lock:
            self._end_principal(principal)

    def __len__(self) -> int:
        return len(self._entries)

    def _end_principal(self, principal: str) -> None:
        for sid in list(self._by_principal.get(principal, ())):
            self._remove(sid)

    def _remove(self, sid: bytes) -> None:
        entry = self._entries.pop(sid, None)
        if entry is None:
            return
        del self._by_use[sid], self._by_age[sid]
        sids = self._by_principal[entry.principal]
        sids.discard(sid)
        if not sids:
            del self._by_principal[entry.principal]

    def _expire(self, now: float) -> None:
        while self._by_use:
            sid = next(iter(self._by_use))
            if now - self._entries[sid].last_seen <= self._idle:
                break
            self._remove(sid)
        while self._by_age:
            sid = next(iter(self._by_age))
            if now - self._entries[sid].created <= self._max:
                break
            self._remove(sid)


def _decode(cookie: str | None) -> bytes | None:
    if not cookie or len(cookie) > 64:
        return None
    try:
        token = base64.urlsafe_b64decode(cookie.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return token if len(token) == TOKEN_SIZE else None


@dataclass(frozen=True)
class EditorLogin:
    # Compared with the account's on every request: a revocation or passphrase
    # change bumps the epoch in the database and so ends this login at once.
    session_epoch: int


@dataclass(frozen=True, repr=False)
class Enrolment:
    """An invited editor between choosing a passphrase and proving a TOTP code."""

    invite_token: str
    public_key: bytes
    wrapped_secret_key: bytes


SourceLogins = LoginStore[None]
EditorLogins = LoginStore[EditorLogin]
Enrolments = LoginStore[Enrolment]
