"""Untrusted files are parsed in a worker process, never in the process that holds keys.

Each task (strip an upload, report on a file, draw its preview) starts a fresh
``app.media.worker`` process, hands it the file through a pipe (never the
disk) and reads its answer back. The worker is confined before it reads a
byte (app/media/worker.py); here the parent adds what a confined process
cannot enforce on itself: a wall-clock deadline, a cap on the answer's size,
and a bound on how many workers run at once. A worker that dies, overruns
or answers nonsense is a failure of that file only: stripping keeps the
bytes as sent and says FAILED, a report says the file could not be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from app.crypto import Sanitised
from app.media.findings import COULD_NOT_READ, MetadataReport

# No secret, no database URL, no proxy: the worker inherits nothing of the server's environment.
WORKER_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
READ_SIZE = 1 << 16
ANSWER_LINE_BYTES = 1 << 20
MIB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 768 * MIB  # on top of the parsers' own code
    cpu_seconds: int = 20
    wall_seconds: float = 30.0
    workers: int = 2


@dataclass(frozen=True)
class Answer:
    header: dict[str, Any]
    payload: bytearray  # a bytearray, split off in place: a cleaned file is never copied twice


_DETECTED = re.compile(r"[a-z0-9-]{1,24}")


class Cleaned(NamedTuple):
    """What the cleaner made of a file: the bytes to store, the outcome, and the type its parser found."""

    data: bytes | bytearray
    status: Sanitised
    detected: str  # "" when the worker did not say


class Sandbox:
    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.workers)
        self._limits_argv = (str(limits.memory_bytes), str(limits.cpu_seconds))

    def strip(self, data: bytes) -> Cleaned:
        """``data`` without its hidden metadata, or as sent with the reason it is not."""
        # The cleaned copy is never much larger than the original (rewritten zips and PDFs grow a little).
        answer = self.run({"task": "strip"}, data, max_payload=2 * len(data) + MIB)
        if answer is None:
            return Cleaned(data, Sanitised.FAILED, "")
        try:
            status = Sanitised(str(answer.header.get("status")))
        except ValueError:
            return Cleaned(data, Sanitised.FAILED, "")
        detected = answer.header.get("kind")
        # The worker's answer is untrusted too: a kind outside the receipt's alphabet is dropped.
        detected = detected if isinstance(detected, str) and _DETECTED.fullmatch(detected) else ""
        if status in (Sanitised.STRIPPED, Sanitised.NONE_FOUND):
            return Cleaned(answer.payload, status, detected)
        return Cleaned(data, status, detected)  # kept as sent: the original bytes, whatever the worker sent back

    def report(self, data: bytes, content_type: str, filename: str) -> tuple[MetadataReport, bool]:
        """The metadata report of a file, and whether it has a safe preview."""
        task = {"task": "report", "content_type": content_type, "filename": filename}
        answer = self.run(task, data, max_payload=0)
        try:
            assert answer is not None
            found = answer.header["report"]
            report = MetadataReport(
                kind=str(found["kind"]),
                fields=[(str(label), str(value)) for label, value in found["fields"]],
                warnings=[str(warning) for warning in found["warnings"]],
            )
            return report, bool(answer.header["previewable"])
        except (AssertionError, KeyError, TypeError, ValueError):
            return MetadataReport("unknown", [], [COULD_NOT_READ]), False

    def preview(self, data: bytes) -> bytes | None:
        """A PNG drawn by the worker from the file's pixels, or None."""
        answer = self.run({"task": "preview"}, data, max_payload=64 * MIB)
        if answer is None or answer.header.get("preview") is not True:
            return None
        return bytes(answer.payload)

    def run(self, task: dict[str, Any], data: bytes, *, max_payload: int) -> Answer | None:
        """Run one task in a fresh worker; None if it failed, overran or answered too much."""
        with self._slots:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and module, fixed arguments)
                [sys.executable, "-I", "-m", "app.media.worker", *self._limits_argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=WORKER_ENVIRONMENT,
                cwd="/",
            )
            try:
                request = json.dumps(task).encode() + b"\n"
                output = _exchange(process, request, data, ANSWER_LINE_BYTES + max_payload, self.limits.wall_seconds)
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
        if output is None or process.returncode != 0:
            return None
        end = output.find(b"\n", 0, ANSWER_LINE_BYTES)
        if end < 0 or len(output) - end - 1 > max_payload:
            return None
        try:
            header = json.loads(output[:end])
        except ValueError:
            return None
        del output[: end + 1]
        return Answer(header, output) if isinstance(header, dict) else None


def _exchange(
    process: subprocess.Popen[bytes], request: bytes, data: bytes, max_output: int, wall_seconds: float
) -> bytearray | None:
    """Feed the worker and collect its output; None past the deadline or the size cap."""
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def feed() -> None:
        # A worker that dies early closes its end: that is its failure, not ours.
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.write(request)
            stdin.write(data)
        with contextlib.suppress(OSError):
            stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    deadline = time.monotonic() + wall_seconds
    output = bytearray()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(timeout=left):
                    return None
                chunk = os.read(stdout.fileno(), READ_SIZE)
                if not chunk:
                    break
                output += chunk
                if len(output) > max_output:
                    return None
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
        return output
    except subprocess.TimeoutExpired:
        return None
    finally:
        if process.poll() is None:
            process.kill()  # unblocks the feeder, whose pipe then breaks
        feeder.join()
        stdout.close()
