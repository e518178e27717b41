"""How fast the editor's inbox lists a page at 100,000 sources.

Fills a throw-away SQLite database (migrated as in production) with fake
sources, editors, tags and tag links inserted directly (the inbox decrypts
nothing, so no capsule or body is needed), then times ``triage.list_sources``
for the first page, a deep page and each filter, and prints p50/p95.

    .venv/bin/python -m bench.inbox [--sources 100000] [--runs 40] [--keep]

A benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from app.db.migrate import upgrade_database
from app.db.models import SOURCE_STATUSES, Editor, Source, SourceTag, Tag
from app.db.session import make_engine, make_session_factory
from app.services import triage
from bench.report import Table

PAGE_SIZE = 100
EDITORS = 12
TAGS = 30
SEED = 20240611
BATCH = 10_000
GOAL_MS = 100.0


def _editors(engine: Engine, rng: random.Random) -> list[str]:
    ids = [secrets.token_hex(16) for _ in range(EDITORS)]
    rows = [
        {
            "id": editor_id,
            "username": f"editor-{n}",
            "is_admin": n == 0,
            "public_key": rng.randbytes(32),
            "wrapped_secret_key": rng.randbytes(98),
            "sealed_totp_secret": rng.randbytes(80),
            "created_on": dt.date(2024, 1, 1),
            "session_epoch": 0,
        }
        for n, editor_id in enumerate(ids)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Editor), rows)
    return ids


def _fill(engine: Engine, count: int) -> tuple[str, list[str]]:
    """Insert ``count`` sources; return the busiest editor's id and the tag ids."""
    rng = random.Random(SEED)
    editors = _editors(engine, rng)
    tags = [secrets.token_hex(16) for _ in range(TAGS)]
    with engine.begin() as connection:
        # Fake sealed names of a realistic size (one 256-byte record block).
        connection.execute(insert(Tag), [{"id": t, "sealed_name": rng.randbytes(313)} for t in tags])
    statuses = list(SOURCE_STATUSES)
    weights = [40, 15, 10, 8, 5, 12, 10]
    start = dt.date(2023, 1, 1)
    for offset in range(0, count, BATCH):
        sources, links = [], []
        for _ in range(min(BATCH, count - offset)):
            source_id = secrets.token_hex(16)
            day = start + dt.timedelta(days=rng.randrange(3 * 365))
            assigned = rng.random() < 0.3
            sources.append(
                {
                    "id": source_id,
                    "lookup_id": rng.randbytes(32),
                    "reply_public_key": rng.randbytes(32),
                    "designation": f"source {secrets.token_hex(4)}",
                    "created_on": day,
                    "last_submission_on": day,
                    "status": rng.choices(statuses, weights)[0],
                    "starred": rng.random() < 0.05,
                    # Editor 0 carries a third of the assignments, like a desk lead.
                    "assignee_id": (editors[0] if rng.random() < 0.33 else rng.choice(editors)) if assigned else None,
                    "hidden": rng.random() < 0.01,
                    "unread": rng.choice((0, 0, 0, 1, 2, 5)),
                }
            )
            for tag in rng.sample(tags, rng.choice((0, 0, 0, 1, 1, 2))):
                links.append({"source_id": source_id, "tag_id": tag})
        with engine.begin() as connection:
            connection.execute(insert(Source), sources)
            if links:
                connection.execute(insert(SourceTag), links)
    return editors[0], tags


def _time(run: Callable[[], object], runs: int) -> tuple[float, float, int]:
    samples = []
    rows = 0
    for _ in range(runs):
        began = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - began) * 1000)
        rows = len(result) if isinstance(result, list) else 0
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, rows


def _page_one(count: int, runs: int) -> tuple[float, float, float]:
    """Fill a fresh database with ``count`` sources; fill seconds, p50 and p95 ms of page 1."""
    workdir = Path(tempfile.mkdtemp(prefix="buzon-inbox-bench-"))
    engine = make_engine(f"sqlite:///{workdir / 'buzon.db'}")
    try:
        upgrade_database(engine)
        began = time.perf_counter()
        busy_editor, _ = _fill(engine, count)
        filled = time.perf_counter() - began
        with make_session_factory(engine)() as session:

            def run() -> object:
                return triage.list_sources(
                    session=session, filters=triage.InboxFilter(), editor_id=busy_editor, limit=PAGE_SIZE + 1, offset=0
                )

            p50, p95, _ = _time(run, runs)
        return filled, p50, p95
    finally:
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


def measure(*, counts: list[int], runs: int) -> Table:
    """Page 1 of the default inbox at each size, through the service function (not HTTP)."""
    rows, p95s = [], {}
    for count in counts:
        filled, p50, p95 = _page_one(count, runs)
        p95s[count] = p95
        rows.append([f"{count:,}", f"{p50:.1f}", f"{p95:.1f}", f"{p95 / p95s[counts[0]]:.2f}", f"{filled:.0f}"])
    largest = max(counts)
    return Table(
        "Editor inbox: page 1 (default filter) by number of sources",
        f"p95 ≤ {GOAL_MS:.0f} ms at 100,000 sources",
        ["sources", "p50 ms", "p95 ms", f"p95 / p95 at {counts[0]:,}", "fill s"],
        rows,
        met=p95s[largest] <= GOAL_MS if largest >= 100_000 else None,
        notes=[
            f"triage.list_sources on SQLite, {runs} runs each; the HTTP page adds rendering on top",
            *([] if largest >= 100_000 else [f"largest size {largest:,}: the 100,000 goal was not measured"]),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database and print its path")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="buzon-inbox-bench-"))
    engine = make_engine(f"sqlite:///{workdir / 'buzon.db'}")
    try:
        upgrade_database(engine)
        began = time.perf_counter()
        busy_editor, tags = _fill(engine, args.sources)
        print(f"Filled {args.sources:,} sources in {time.perf_counter() - began:.1f} s ({workdir})")
        deep_page = max(1, args.sources // 2 // PAGE_SIZE)
        cases: dict[str, tuple[triage.InboxFilter, int]] = {
            "page 1 (default: all but spam)": (triage.InboxFilter(), 1),
            f"page {deep_page} (deep)": (triage.InboxFilter(), deep_page),
            "status=verified": (triage.InboxFilter(status="verified"), 1),
            "status=spam": (triage.InboxFilter(status="spam"), 1),
            "status=all": (triage.InboxFilter(status="all"), 1),
            "starred": (triage.InboxFilter(starred=True), 1),
            "assignee=me": (triage.InboxFilter(assignee="me"), 1),
            "assignee=none": (triage.InboxFilter(assignee="none"), 1),
            "tag": (triage.InboxFilter(tag_id=tags[0]), 1),
            "tag + assignee=me": (triage.InboxFilter(tag_id=tags[0], assignee="me"), 1),
            "status=new + starred, page 5": (triage.InboxFilter(status="new", starred=True), 5),
        }
        factory = make_session_factory(engine)
        print(f"{'case':34} {'p50 ms':>8} {'p95 ms':>8} {'rows':>5}")
        for name, (filters, page) in cases.items():
            with factory() as session:

                def run(session: Session = session, filters: triage.InboxFilter = filters, page: int = page) -> object:
                    return triage.list_sources(
                        session=session,
                        filters=filters,
                        editor_id=busy_editor,
                        limit=PAGE_SIZE + 1,
                        offset=(page - 1) * PAGE_SIZE,
                    )

                p50, p95, rows = _time(run, args.runs)
            print(f"{name:34} {p50:8.2f} {p95:8.2f} {rows:5}")
    finally:
        engine.dispose()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
