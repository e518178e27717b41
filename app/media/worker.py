"""The sandboxed parser: one untrusted file, one task, one short-lived process.

Run by app/media/sandbox.py as ``python -I -m app.media.worker MEMORY CPU``. It
starts from a fresh interpreter (not a fork), so it holds no key, no session
and no database connection; its environment is empty and its only open files
are the pipes. Before it reads the file it leaves the network, lowers its
priority, forbids core dumps and new privileges, and caps its address space,
CPU time, open files and file writes. Whatever a hostile file then makes a
parser do, it can only exhaust this process, which the parent kills at the
wall-clock limit.

Protocol: stdin carries one JSON line (the task), then the file's bytes to
EOF. stdout carries one JSON line (the answer), then the answer's bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import sys
from typing import Any

from app.hardening import forbid_core_dumps, forbid_new_privileges, leave_the_network

MAX_TASK_LINE = 4096
NICENESS = 19
MAX_OPEN_FILES = 32


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def confine(memory_bytes: int, cpu_seconds: int) -> dict[str, bool]:
    """Limits on this process; ``memory_bytes`` is allowed on top of what the parsers' code takes."""
    isolated = leave_the_network()
    forbid_core_dumps()
    forbid_new_privileges()
    limits = {
        resource.RLIMIT_AS: _address_space() + memory_bytes,
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_FSIZE: 0,
        resource.RLIMIT_NOFILE: MAX_OPEN_FILES,
    }
    for limit, value in limits.items():
        resource.setrlimit(limit, (value, value))
    os.nice(NICENESS)  # last: a niceness of 19 says the worker is confined (tests/media/test_sandbox.py)
    return {"network_isolated": isolated}


def _strip(data: bytes, _task: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    from app.media.strip import strip_metadata

    result = strip_metadata(data)
    return {"status": result.status.value, "kind": result.kind}, result.data


def _report(data: bytes, task: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    from app.media.report import metadata_report, safe_preview

    report = metadata_report(data, str(task.get("content_type", "")), str(task.get("filename", "")))
    return {"report": dataclasses.asdict(report), "previewable": safe_preview(data) is not None}, b""


def _preview(data: bytes, _task: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    from app.media.report import safe_preview

    png = safe_preview(data)
    return {"preview": png is not None}, png or b""


TASKS = {"strip": _strip, "report": _report, "preview": _preview}


def main() -> None:
    memory_bytes, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    # The parsers are imported before the limits: their code is ours, not the file's.
    import app.media.report
    import app.media.strip  # noqa: F401

    facts = confine(memory_bytes, cpu_seconds)
    task = json.loads(sys.stdin.buffer.readline(MAX_TASK_LINE))
    data = sys.stdin.buffer.read()
    answer, payload = TASKS[task["task"]](data, task)
    out = sys.stdout.buffer
    out.write(json.dumps({**answer, **facts}).encode() + b"\n")
    out.write(payload)
    out.flush()


if __name__ == "__main__":
    # Nothing a parser prints may reach the parent's logs: the parent reads stderr nowhere.
    with contextlib.suppress(BrokenPipeError):
        main()
