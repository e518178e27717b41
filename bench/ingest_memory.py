"""How much the server's memory grows while one large upload streams in.

Starts a real ``buzon serve`` on a throw-away instance, streams one multipart
POST with a single file generated on the fly (never held whole in memory,
never written to disk by the client), samples the server's RSS meanwhile and
prints the growth over its RSS at rest. For scale it also times raw
``BodyWriter`` encryption of the same number of bytes in the same run.

    .venv/bin/python -m bench.ingest_memory [--size-mib 1024] [--keep]

Exits 1 if the peak RSS grew by 100 MB or more, 2 if the upload was not stored
as expected. A benchmark, not a timed test: run it by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
from sqlalchemy import select

from app import crypto
from app.db.models import Item
from app.db.session import make_engine, make_session_factory
from app.settings import MIB, Settings
from tests.support import initialise, settings_for, spawn_server, stop_server

MB = 1_000_000
LIMIT_MB = 100.0
BLOCK_SIZE = MIB
# Distinct pseudo-random blocks, cycled: the content need not be unique, only
# incompressible-looking, and the client's memory stays at a few MiB.
POOL_BLOCKS = 8
SEED = 20240611
SAMPLE_INTERVAL = 0.05


class VerificationError(Exception):
    pass


# --- payload ----------------------------------------------------------------------


def block_pool() -> list[bytes]:
    rng = random.Random(SEED)
    return [rng.randbytes(BLOCK_SIZE) for _ in range(POOL_BLOCKS)]


def content_chunks(size: int, pool: list[bytes]) -> Iterator[bytes]:
    sent = 0
    index = 0
    while sent < size:
        block = pool[index % len(pool)]
        take = min(len(block), size - sent)
        yield block if take == len(block) else block[:take]
        sent += take
        index += 1


class MultipartUpload:
    """One ``files`` part of ``size`` bytes, framed as a browser would send it.

    The "remove hidden data" box is ticked, as it is by default, so the server
    first buffers up to its strip limit in memory before streaming the rest.
    """

    def __init__(self, size: int, pool: list[bytes]) -> None:
        self.size = size
        self._pool = pool
        self.boundary = f"----BuzonBench{secrets.token_hex(16)}"
        self._head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="strip_metadata"\r\n\r\n1\r\n'
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="files"; filename="bench.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("ascii")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")

    @property
    def content_length(self) -> int:
        return len(self._head) + self.size + len(self._tail)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.content_length),
        }

    def body(self) -> Iterator[bytes]:
        yield self._head
        yield from content_chunks(self.size, self._pool)
        yield self._tail


# --- memory ----------------------------------------------------------------------------


def _processes(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [root]


def tree_rss(pid: int) -> int:
    total = 0
    for process in _processes(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += int(process.memory_info().rss)
    return total


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def reset_high_water_marks(pid: int) -> bool:
    """Reset the kernel's peak-RSS counters (Linux ≥ 4.0); False if unavailable."""
    ok = True
    for process in _processes(pid):
        try:
            Path(f"/proc/{process.pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def tree_high_water_mark(pid: int) -> int | None:
    """Sum of VmHWM over the tree: an upper bound of the tree's true peak."""
    total = 0
    for process in _processes(pid):
        value = _status_kib(process.pid, "VmHWM")
        if value is None:
            return None
        total += value
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._pid = pid
        self._interval = interval
        self._stop_event = threading.Event()
        self.peak = 0
        self.samples = 0

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                rss = tree_rss(self._pid)
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop_event.wait(self._interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def rss_at_rest(pid: int, readings: int = 5) -> int:
    values = []
    for _ in range(readings):
        time.sleep(0.1)
        values.append(tree_rss(pid))
    return int(statistics.median(values))


# --- server ----------------------------------------------------------------------------


class Server:
    def __init__(self, settings: Settings, root: Path) -> None:
        tmp_dir = root / "server-tmp"
        tmp_dir.mkdir()
        self.log_path = root / "server.log"
        self.process, self.url, _ = spawn_server(settings, tmp_dir, self.log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_server(self.process)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- submission and verification ------------------------------------------------------


def check_submitted(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise VerificationError(f"POST /submit answered {response.status_code}: {response.text[:500]}")
    if 'id="codename"' not in response.text:
        raise VerificationError('the response has no id="codename"')


def submit_url(client: httpx.Client, url: str) -> str:
    """The form's action with its CSRF token, fetched as a browser would."""
    match = re.search(r'action="(/submit\?csrf_token=[^"]+)"', client.get(f"{url}/submit").text)
    if match is None:
        raise VerificationError("the submission form has no action with a CSRF token")
    return url + html.unescape(match.group(1))


def warm_up(client: httpx.Client, url: str) -> None:
    response = client.post(
        submit_url(client, url),
        data={"message": "warm-up"},
        files=[("files", ("warm-up.bin", secrets.token_bytes(200_000), "application/octet-stream"))],
    )
    check_submitted(response)


def stored_bodies(store_dir: Path) -> set[Path]:
    # Empty files are free slots (docs/storage.md); a body is never empty.
    return {p for p in store_dir.glob("*/*") if p.is_file() and p.stat().st_size > 0}


def verify_store(settings: Settings, before: set[Path], size: int) -> None:
    after = stored_bodies(settings.store_dir)
    new = after - before
    if len(new) != 1:
        raise VerificationError(f"expected one new body in the store, found {len(new)}")
    (path,) = new
    expected = crypto.body_size(size)
    actual = path.stat().st_size
    if actual != expected:
        raise VerificationError(f"stored body is {actual} bytes, expected body_size({size}) = {expected}")
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            item = session.scalars(select(Item).where(Item.blob_name == path.name)).one_or_none()
    finally:
        engine.dispose()
    if item is None or item.kind != "file" or item.body_size != expected:
        found = None if item is None else (item.kind, item.body_size)
        raise VerificationError(f"database row for {path.name}: expected ('file', {expected}), found {found}")


# --- reference ------------------------------------------------------------------------------


def reference_encrypt(root: Path, size: int, pool: list[bytes]) -> float:
    """Seconds to encrypt ``size`` bytes with BodyWriter into a file, fsync included."""
    path = root / "reference.body"
    try:
        start = time.perf_counter()
        with path.open("wb") as sink:
            writer = crypto.BodyWriter(crypto.new_data_key(), sink)
            for chunk in content_chunks(size, pool):
                writer.write(chunk)
            writer.finish()
            sink.flush()
            os.fsync(sink.fileno())
        elapsed = time.perf_counter() - start
        if path.stat().st_size != crypto.body_size(size):
            raise VerificationError("reference body has the wrong size")
        return elapsed
    finally:
        path.unlink(missing_ok=True)


# --- main ----------------------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / MB:.1f} MB"


def run(size: int, root: Path) -> bool:
    settings = settings_for(root / "data", max_submission_bytes=size + 16 * MIB)
    initialise(settings)
    pool = block_pool()
    server = Server(settings, root)
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, read=600.0, write=600.0)) as client:
            warm_up(client, server.url)
            rest = rss_at_rest(server.pid)
            hwm_reset = reset_high_water_marks(server.pid)
            before = stored_bodies(settings.store_dir)

            upload = MultipartUpload(size, pool)
            sampler = RssSampler(server.pid)
            sampler.start()
            start = time.perf_counter()
            try:
                target = submit_url(client, server.url)
                response = client.post(target, content=upload.body(), headers=upload.headers)
            finally:
                elapsed = time.perf_counter() - start
                sampler.stop()
            check_submitted(response)
            hwm = tree_high_water_mark(server.pid) if hwm_reset else None
        verify_store(settings, before, size)
    except BaseException:
        tail = server.log_tail()
        if tail:
            print(f"--- server log (tail) ---\n{tail}\n---", file=sys.stderr)
        raise
    finally:
        server.stop()

    reference = reference_encrypt(root, size, pool)

    peak = max(sampler.peak, hwm or 0)
    growth_mb = (peak - rest) / MB
    ingest_rate = size / MB / elapsed
    reference_rate = size / MB / reference
    print(f"file size:                  {size / MIB:.0f} MiB ({size} bytes)")
    print(f"upload time:                {elapsed:.2f} s, {ingest_rate:.1f} MB/s")
    print(f"server RSS at rest:         {_mb(rest)} (after one warm-up submission)")
    every = f"{sampler.samples} samples, every {SAMPLE_INTERVAL * 1000:.0f} ms"
    print(f"server peak RSS, sampled:   {_mb(sampler.peak)} ({every})")
    if hwm is not None:
        print(f"server peak RSS, VmHWM:     {_mb(hwm)} (kernel high-water mark, reset after warm-up)")
    else:
        print("server peak RSS, VmHWM:     unavailable (could not reset /proc/<pid>/clear_refs)")
    print(f"reference BodyWriter:       {reference:.2f} s, {reference_rate:.1f} MB/s (same bytes, fsync at end)")
    print(f"ingest / reference:         {ingest_rate / reference_rate:.2f}")
    ok = growth_mb < LIMIT_MB
    verdict = "OK" if ok else "EXCEEDED"
    print(f"peak RSS growth: {growth_mb:.1f} MB (limit {LIMIT_MB:.0f} MB): {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the uploaded file in MiB (default 1024)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    args = parser.parse_args(argv)
    if args.size_mib < 1:
        parser.error("--size-mib must be at least 1")

    root = Path(tempfile.mkdtemp(prefix="buzon-bench-"))
    try:
        ok = run(args.size_mib * MIB, root)
    except VerificationError as e:
        print(f"verification failed: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
