"""What `buzon serve` does to its own process before it holds a key: no core dumps, no ptrace by peers.

A core dump of a serving process would put unlocked newsroom keys, codenames
and upload plaintext on disk, where a seizure finds them. systemd's
LimitCORE=0 (deploy/systemd/buzon.service) covers installs that use it; this
covers the rest. A non-dumpable process also cannot be read through
/proc/<pid>/mem or attached with ptrace by other processes of the same user.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import resource

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def forbid_core_dumps() -> None:
    # A seccomp filter (SystemCallFilter=~@resources) may refuse setrlimit; LimitCORE=0 is set there.
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def is_dumpable() -> bool:
    return bool(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
