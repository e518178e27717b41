"""Do the source pages stay fast while codename logins flood the server?

A real server with the production codename Argon2id costs. The p95 latency of
a few pages is measured at idle (the reference), then again while threads post
codename logins with random codenames (valid CSRF tokens) as fast as they can.

    .venv/bin/python -m bench.flood [--flooders 16] [--requests 200]

A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import httpx

from bench.report import PRODUCTION_CODENAME_KDF, Table, client, live_bench, percentile, random_codename
from tests.support import csrf_token_in

PATHS = ("/", "/submit", "/static/style.css")
RATIO_GOAL = 2.0


def _page_p95s(http: httpx.Client, base: str, requests: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {path: [] for path in PATHS}
    # Round-robin, so drift in the machine's load touches every page alike.
    for _ in range(requests):
        for path in PATHS:
            began = time.perf_counter()
            response = http.get(f"{base}{path}")
            samples[path].append(time.perf_counter() - began)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
    return {path: percentile(times, 0.95) * 1000 for path, times in samples.items()}


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and all its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Flood:
    def __init__(self, base: str, flooders: int) -> None:
        self._base = base
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self._threads = [threading.Thread(target=self._run) for _ in range(flooders)]

    def _run(self) -> None:
        with client() as http:
            token = csrf_token_in(http.get(f"{self._base}/login").text)
            while not self._stop.is_set():
                data = {"codename": random_codename(), "csrf_token": token}
                status = http.post(f"{self._base}/login", data=data).status_code
                with self._lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1

    def __enter__(self) -> _Flood:
        for thread in self._threads:
            thread.start()
        self.began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.began
        self._stop.set()
        for thread in self._threads:
            thread.join()


def measure(*, flooders: int, requests: int) -> Table:
    with live_bench("flood", **PRODUCTION_CODENAME_KDF) as bench, client() as http:
        base = bench.server.source_url
        _page_p95s(http, base, 10)  # warm-up
        idle = _page_p95s(http, base, requests)
        with _Flood(base, flooders) as flood:
            time.sleep(1.0)  # let every flooder reach the KDF gate
            # Wall time; CPU of this process (flooders and measuring client), of this thread, of the server.
            began = time.perf_counter(), time.process_time(), time.thread_time(), _cpu_seconds(bench.pid)
            loaded = _page_p95s(http, base, requests)
            ended = time.perf_counter(), time.process_time(), time.thread_time(), _cpu_seconds(bench.pid)
    ratios = {path: loaded[path] / idle[path] for path in PATHS}
    attempts = sum(flood.statuses.values())
    statuses = ", ".join(f"{count} × {status}" for status, count in sorted(flood.statuses.items()))
    wall, bench_cpu, measuring_cpu, server_cpu = (end - start for start, end in zip(began, ended, strict=True))
    return Table(
        f"Pages under a codename-login flood ({flooders} flooding threads)",
        f"p95 under the flood ≤ {RATIO_GOAL:.0f}× the idle p95, for every page",
        ["page", "idle p95 ms", "flood p95 ms", "ratio"],
        [[path, f"{idle[path]:.1f}", f"{loaded[path]:.1f}", f"{ratios[path]:.2f}"] for path in PATHS],
        met=max(ratios.values()) <= RATIO_GOAL,
        notes=[
            f"{requests} requests per page per phase; the flood made {attempts / flood.seconds:.1f} login "
            f"attempts/s ({statuses}: 401 = codename checked with Argon2id, 503 = busy page from the KDF gate)",
            "the flooders, the measuring client and the server share the same cores; CPU while the flood was "
            f"measured ({wall:.1f} s, so {wall * (os.cpu_count() or 1):.1f} core-seconds): flooders "
            f"{bench_cpu - measuring_cpu:.1f} s, measuring client {measuring_cpu:.1f} s, server {server_cpu:.1f} s",
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flooders", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    print(measure(flooders=args.flooders, requests=args.requests).text())


if __name__ == "__main__":
    main()
