"""Login throttling, per account and global, held in memory only.

Failures are counted per username, whether or not the account exists, so the
throttle says nothing about which names are real. Times are monotonic-clock
readings that never leave the process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Failures remembered for this many distinct usernames; the oldest are dropped.
MAX_TRACKED_NAMES = 10_000


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int,
        lockout_seconds: float,
        attempts_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._lockout = lockout_seconds
        self._per_minute = attempts_per_minute
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._attempts: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, username: str) -> bool:
        """Whether a login attempt for ``username`` may run now; counts it if so."""
        now = self._clock()
        key = _key(username)
        with self._lock:
            while self._attempts and now - self._attempts[0] > 60:
                self._attempts.popleft()
            if len(self._attempts) >= self._per_minute:
                return False
            failures = self._failures.get(key)
            if failures is not None:
                while failures and now - failures[0] > self._lockout:
                    failures.popleft()
                if len(failures) >= self._max_failures:
                    return False
            self._attempts.append(now)
            return True

    def failed(self, username: str) -> None:
        key = _key(username)
        with self._lock:
            failures = self._failures.pop(key, None) or deque(maxlen=self._max_failures)
            failures.append(self._clock())
            self._failures[key] = failures
            while len(self._failures) > MAX_TRACKED_NAMES:
                self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(_key(username), None)


def _key(username: str) -> str:
    return username.strip().casefold()[:64]
