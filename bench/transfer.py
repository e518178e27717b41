"""Large files through a real server: ingest speed, editor download speed, server memory.

For each size, one multipart upload of a file generated on the fly goes to a
real ``buzon serve`` over loopback, then an editor logged in to the portal
downloads (and so decrypts) it. The server's RSS (the process tree, sampled,
and the kernel's high-water mark) is read during each transfer. Speeds are
ratios to the raw crypto of the same bytes in the same run: ``BodyWriter`` into
a file with fsync, and ``read_body`` back from that file.

    .venv/bin/python -m bench.transfer [--size-mib 1024] [--two-gib]

A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from pathlib import Path

import httpx
from PIL import Image, PngImagePlugin
from sqlalchemy import select

from app import crypto
from app.db.models import Item
from app.db.session import make_engine, make_session_factory
from app.settings import MIB
from bench.ingest_memory import (
    SEED,
    MultipartUpload,
    RssSampler,
    VerificationError,
    block_pool,
    check_submitted,
    content_chunks,
    reset_high_water_marks,
    rss_at_rest,
    submit_url,
    tree_high_water_mark,
    warm_up,
)
from bench.report import MB, Bench, Table, live_bench

INGEST_RATIO_GOAL = 0.5
DOWNLOAD_RATIO_GOAL = 0.5
RSS_GOAL_MB = 150.0
TIMEOUT = httpx.Timeout(30.0, read=1200.0, write=1200.0)


class _Watch:
    """Peak RSS of the server tree during one transfer: sampled, or VmHWM if larger."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._hwm = reset_high_water_marks(pid)
        self._sampler = RssSampler(pid)

    def __enter__(self) -> _Watch:
        self._sampler.start()
        self.began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.began
        self._sampler.stop()
        hwm = tree_high_water_mark(self._pid) if self._hwm else None
        self.peak = max(self._sampler.peak, hwm or 0)


def _item_id(bench: Bench, size: int) -> str:
    settings = bench.instance.settings
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            query = select(Item.id).where(Item.kind == "file", Item.body_size == crypto.body_size(size))
            item_id = session.scalars(query).first()
    finally:
        engine.dispose()
    if item_id is None:
        raise VerificationError(f"no stored file of {size} bytes")
    return item_id


def _reference(root: Path, size: int, pool: list[bytes]) -> tuple[float, float]:
    """Seconds to encrypt ``size`` bytes into a file (fsync included), then to decrypt them."""
    path = root / "reference.body"
    key = crypto.new_data_key()
    try:
        began = time.perf_counter()
        with path.open("wb") as sink:
            writer = crypto.BodyWriter(key, sink)
            for chunk in content_chunks(size, pool):
                writer.write(chunk)
            writer.finish()
            sink.flush()
            os.fsync(sink.fileno())
        encrypt = time.perf_counter() - began
        began = time.perf_counter()
        with path.open("rb") as source:
            read = sum(len(chunk) for chunk in crypto.read_body(key, source, size))
        decrypt = time.perf_counter() - began
        if read != size:
            raise VerificationError("the reference body did not decrypt to its size")
        return encrypt, decrypt
    finally:
        path.unlink(missing_ok=True)


def _one_size(bench: Bench, size: int, pool: list[bytes], source: httpx.Client, editor: httpx.Client) -> list[float]:
    upload = MultipartUpload(size, pool)
    target = submit_url(source, bench.server.source_url)
    with _Watch(bench.pid) as up:
        check_submitted(source.post(target, content=upload.body(), headers=upload.headers))
    url = f"{bench.server.editor_url}/items/{_item_id(bench, size)}/download"
    received = 0
    with _Watch(bench.pid) as down, editor.stream("GET", url) as response:
        if response.status_code != 200:
            raise VerificationError(f"download answered {response.status_code}")
        for chunk in response.iter_bytes():
            received += len(chunk)
    if received != size:
        raise VerificationError(f"downloaded {received} bytes, expected {size}")
    encrypt, decrypt = _reference(bench.root, size, pool)
    return [
        size / MB / up.seconds,
        size / MB / encrypt,
        up.peak / MB,
        size / MB / down.seconds,
        size / MB / decrypt,
        down.peak / MB,
    ]


def _photo(size: int) -> bytes:
    """A PNG of about ``size`` bytes with an Author text chunk: the server cleans it if it can."""
    width = 4096
    height = max(1, size // (3 * width + 1))
    pixels = random.Random(SEED).randbytes(3 * width * height)
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "bench")
    out = io.BytesIO()
    # Stored, not compressed: the file is as large as its pixels, and quick to make.
    Image.frombytes("RGB", (width, height), pixels).save(out, "PNG", pnginfo=info, compress_level=0)
    return out.getvalue()


def _clean_photo(bench: Bench, source: httpx.Client) -> list[str]:
    photo = _photo(bench.instance.settings.max_strip_bytes - MIB)
    target = submit_url(source, bench.server.source_url)
    with _Watch(bench.pid) as watch:
        response = source.post(
            target, data={"strip_metadata": "1"}, files=[("files", ("photo.png", photo, "image/png"))]
        )
    check_submitted(response)
    cleaned = "could not remove" not in response.text
    return [f"{len(photo) / MIB:.0f} MiB PNG", f"{watch.peak / MB:.1f}", "yes" if cleaned else "no"]


def measure(*, sizes_mib: list[int]) -> list[Table]:
    pool = block_pool()
    figures: dict[int, list[float]] = {}
    with live_bench("transfer", max_submission_bytes=max(sizes_mib) * MIB + 16 * MIB) as bench:
        account = bench.instance.add_editor(admin=True)
        with httpx.Client(timeout=TIMEOUT) as source, httpx.Client(timeout=TIMEOUT) as editor:
            warm_up(source, bench.server.source_url)
            bench.server.login(editor, account)
            rest = rss_at_rest(bench.pid)
            for mib in sizes_mib:
                figures[mib] = _one_size(bench, mib * MIB, pool, source, editor)
            photo = _clean_photo(bench, source)
    largest = figures[max(sizes_mib)]
    ingest = Table(
        "Ingest: one file uploaded over loopback to `buzon serve`",
        f"upload MB/s ≥ {INGEST_RATIO_GOAL} × raw BodyWriter encrypt + write + fsync of the same bytes (largest file)",
        ["file", "upload MB/s", "raw encrypt MB/s", "ratio"],
        [[f"{m} MiB", f"{f[0]:.1f}", f"{f[1]:.1f}", f"{f[0] / f[1]:.2f}"] for m, f in figures.items()],
        met=largest[0] / largest[1] >= INGEST_RATIO_GOAL,
        notes=[
            "at 1 GiB and more the raw reference is bound by its fsync (the disk's writeback), which flatters the "
            "ratio; below that it moves with the load, 0.44–0.74 at 100–256 MiB in this session's runs",
            "the 10 MiB row includes loading Pillow and pikepdf (about 0.25 s) for the first file with stripping "
            "asked for",
        ],
    )
    peaks = [f[2] for f in figures.values()] + [f[5] for f in figures.values()]
    memory = Table(
        "Server memory during uploads and downloads",
        f"peak RSS of the server process flat across sizes and ≤ {RSS_GOAL_MB:.0f} MB",
        ["file", "RSS at rest MB", "peak RSS, upload MB", "peak RSS, download MB"],
        [[f"{m} MiB", f"{rest / MB:.1f}", f"{f[2]:.1f}", f"{f[5]:.1f}"] for m, f in figures.items()],
        met=max(peaks) <= RSS_GOAL_MB,
        notes=[
            "peak = the larger of 50 ms RSS sampling of the server's process tree and the sum of its "
            "VmHWM (kernel high-water mark, reset before each transfer; an upper bound)",
            "upload: the default 'remove hidden data' box is ticked, so up to 32 MiB is buffered for stripping",
            "at rest = before any file was stripped: Pillow and pikepdf load with the first (the 10 MiB upload, "
            "whose random bytes stay as sent) and stay loaded",
            "the download figures include what the allocator kept from the upload before it",
        ],
    )
    cleaning = Table(
        "Server memory cleaning a photo just under the strip limit",
        "report: peak RSS while the server strips a file it can clean (the uploads above are random bytes, "
        "which it cannot)",
        ["file", "peak RSS MB", "cleaned"],
        [photo],
        notes=[
            "the original and the cleaned copy are held at once; the check of the cleaned copy reads only its header",
        ],
    )
    download = Table(
        "Editor download: the same file decrypted through the editor portal",
        f"download MB/s ≥ {DOWNLOAD_RATIO_GOAL} × raw read_body decryption of the same bytes (largest file)",
        ["file", "download MB/s", "raw decrypt MB/s", "ratio", "peak RSS MB"],
        [[f"{m} MiB", f"{f[3]:.1f}", f"{f[4]:.1f}", f"{f[3] / f[4]:.2f}", f"{f[5]:.1f}"] for m, f in figures.items()],
        met=largest[3] / largest[4] >= DOWNLOAD_RATIO_GOAL,
    )
    return [ingest, memory, cleaning, download]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="the largest file, in MiB (default 1024)")
    parser.add_argument("--two-gib", action="store_true", help="also upload and download a 2 GiB file")
    args = parser.parse_args(argv)
    sizes = sorted({10, 100, args.size_mib} | ({2048} if args.two_gib else set()))
    for table in measure(sizes_mib=sizes):
        print(table.text(), end="\n\n")


if __name__ == "__main__":
    main()
