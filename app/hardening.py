"""What a Buzón process does to itself before it holds a key or a source's bytes: no core dumps, no ptrace by peers.

`buzon serve` calls ``forbid_core_dumps`` before it serves; the parser
sandbox's worker (app/media/worker.py) calls it and ``forbid_new_privileges``
before it reads a file.

A core dump of a serving process would put unlocked newsroom keys, codenames
and upload plaintext on disk, where a seizure finds them. systemd's
LimitCORE=0 (deploy/systemd/buzon.service) covers installs that use it; this
covers the rest. A non-dumpable process also cannot be read through
/proc/<pid>/mem or attached with ptrace by other processes of the same user.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def _libc() -> ctypes.CDLL:
    # The C library this interpreter already runs on: find_library("c") would spawn ldconfig.
    return ctypes.CDLL(None, use_errno=True)


def forbid_core_dumps() -> None:
    # A seccomp filter (SystemCallFilter=~@resources) may refuse setrlimit; LimitCORE=0 is set there.
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def is_dumpable() -> bool:
    return bool(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def forbid_new_privileges() -> None:
    """No set-uid program started from here can gain privileges (and seccomp would be allowed)."""
    _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def leave_the_network() -> bool:
    """Move this process into a network namespace of its own, with no interface but a down loopback.

    Unprivileged processes need a user namespace for that; root gets one
    without. Returns False where the kernel or a container forbids both
    (then the process keeps the host's network: `buzon doctor` says so).
    """
    libc = _libc()
    return any(libc.unshare(flags) == 0 for flags in (CLONE_NEWUSER | CLONE_NEWNET, CLONE_NEWNET))
