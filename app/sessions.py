"""Editor sessions, held in this process's memory only.

The cookie carries a random token. The server indexes sessions by a hash of
it and keeps the unlocked newsroom keys encrypted under a key derived from it
(docs/crypto.md, "Editor sessions"), so neither a restart nor a memory image
without the cookie yields the keys. A restart logs every editor out.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass

from app import crypto
from app.services.editors import UnlockedEditor

TOKEN_SIZE = 32
_ENTRY_SIZE = crypto.KEY_ID_SIZE + crypto.KEY_SIZE


@dataclass
class _Entry:
    editor_id: str
    username: str
    is_admin: bool
    sealed_keys: bytes
    created: float
    last_seen: float


class EditorSessions:
    def __init__(self, *, idle_seconds: float, max_seconds: float) -> None:
        self._idle = idle_seconds
        self._max = max_seconds
        self._entries: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    def create(self, editor: UnlockedEditor) -> str:
        """Store an unlocked editor and return the cookie value for the session."""
        token = crypto.random_token(TOKEN_SIZE)
        packed = b"".join(kid + kp.secret for kid, kp in editor.newsroom_keys.items())
        now = time.monotonic()
        entry = _Entry(
            editor.editor_id, editor.username, editor.is_admin, crypto.seal_for_session(token, packed), now, now
        )
        with self._lock:
            self._expire(now)
            self._entries[crypto.session_id(token)] = entry
        return base64.urlsafe_b64encode(token).decode("ascii")

    def get(self, cookie: str | None) -> UnlockedEditor | None:
        token = _decode(cookie)
        if token is None:
            return None
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(crypto.session_id(token))
            if entry is None:
                return None
            entry.last_seen = now
        packed = crypto.open_for_session(token, entry.sealed_keys)
        keys = {}
        for offset in range(0, len(packed), _ENTRY_SIZE):
            keypair = crypto.keypair_from_secret(packed[offset + crypto.KEY_ID_SIZE : offset + _ENTRY_SIZE])
            keys[packed[offset : offset + crypto.KEY_ID_SIZE]] = keypair
        return UnlockedEditor(entry.editor_id, entry.username, entry.is_admin, keys)

    def end(self, cookie: str | None) -> None:
        token = _decode(cookie)
        if token is not None:
            with self._lock:
                self._entries.pop(crypto.session_id(token), None)

    def end_all_for(self, editor_id: str) -> None:
        with self._lock:
            for sid in [sid for sid, e in self._entries.items() if e.editor_id == editor_id]:
                del self._entries[sid]

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        stale = [
            sid for sid, e in self._entries.items() if now - e.last_seen > self._idle or now - e.created > self._max
        ]
        for sid in stale:
            del self._entries[sid]


def _decode(cookie: str | None) -> bytes | None:
    if not cookie or len(cookie) > 64:
        return None
    try:
        token = base64.urlsafe_b64decode(cookie.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return token if len(token) == TOKEN_SIZE else None
