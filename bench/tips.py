"""Small tips and the paths bound by Argon2id, against a real server.

Small tips: clients in threads, each fetching the form (for its CSRF token)
then posting a short message, as a browser with JavaScript off would. The
server runs the fast test KDF so the figure is the web, ingest and database
path; the reference is one client in the same run.

KDF-bound paths: with the production codename Argon2id costs, first
submissions (each derives a new codename) and codename logins per second, as a
ratio to raw ``derive_source_keys`` on every core, timed in the same run.

    .venv/bin/python -m bench.tips [--clients 50] [--seconds 30] [--kdf-runs 24]

A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app import crypto
from app.settings import Settings
from bench.ingest_memory import submit_url
from bench.report import PRODUCTION_CODENAME_KDF, Bench, Table, client, live_bench, percentile
from tests.support import codename_in, post_multipart

MESSAGE = "The mayor's office signed the contract on Tuesday; the invoices are in the second file."
# High enough that the hourly budgets never answer "try again later" here.
NO_BUDGETS: dict[str, object] = {"max_submissions_per_hour": 10**7, "max_new_codenames_per_hour": 10**7}


def _first_submission(bench: Bench, http: httpx.Client) -> str | None:
    """Post one first message; return the new codename, or None if refused (e.g. busy)."""
    response = post_multipart(http, submit_url(http, bench.server.source_url), {"message": MESSAGE})
    return codename_in(response.text) if response.status_code == 200 else None


def _run_clients(
    clients: int, work: Callable[[httpx.Client], bool], *, seconds: float = 0, runs: int = 0
) -> list[float]:
    """Run ``work`` in ``clients`` threads for ``seconds`` or ``runs`` calls in all; the latencies of successes."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    remaining = [runs]

    def take() -> bool:
        if seconds:
            return time.perf_counter() < deadline
        with lock:
            remaining[0] -= 1
            return remaining[0] >= 0

    def loop() -> None:
        with client() as http:
            while take():
                began = time.perf_counter()
                ok = work(http)
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def _rate_row(name: str, latencies: list[float], elapsed: float) -> list[str]:
    p50, p95 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000
    return [name, f"{len(latencies) / elapsed:.1f}", f"{p50:.0f}", f"{p95:.0f}"]


def measure_small_tips(*, clients: int, seconds: float) -> Table:
    rows = []
    with live_bench("tips", **NO_BUDGETS) as bench:

        def tip(http: httpx.Client) -> bool:
            return _first_submission(bench, http) is not None

        _run_clients(2, tip, runs=10)  # warm-up
        rates = []
        for n in (1, clients):
            began = time.perf_counter()
            latencies = _run_clients(n, tip, seconds=seconds)
            elapsed = time.perf_counter() - began
            rates.append(len(latencies) / elapsed)
            rows.append(_rate_row(f"{n} client{'s' if n > 1 else ''}", latencies, elapsed))
    return Table(
        f"Small tips: {clients} concurrent clients, {seconds:.0f} s each",
        "report: submissions per second and latency (form fetch + post) with one client and with many",
        ["clients", "tips/s", "p50 ms", "p95 ms"],
        rows,
        notes=[
            f"{clients} clients give {rates[1] / rates[0]:.2f}× the rate of one client",
            "test KDF costs here: the Argon2id share is in the next table",
        ],
    )


def _raw_kdf_rate(runs: int, threads: int) -> float:
    """Derivations per second in ``threads`` threads (Argon2id releases the GIL)."""
    settings = Settings(data_dir=Path("."))  # only the production KDF costs are read
    pepper = crypto.random_token()

    def derive() -> None:
        for _ in range(runs):
            crypto.derive_source_keys("seven words of a made up codename here", pepper, settings.codename_kdf)

    workers = [threading.Thread(target=derive) for _ in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return runs * threads / (time.perf_counter() - began)


def measure_kdf_paths(*, runs: int, clients: int = 4) -> Table:
    cores = os.cpu_count() or 1
    slots = min(cores, Settings.model_fields["max_concurrent_kdf"].default)
    raw = _raw_kdf_rate(max(3, runs // 4), slots)
    codenames: list[str] = []
    turns = itertools.count()
    rows = []
    with live_bench("kdf", **PRODUCTION_CODENAME_KDF, **NO_BUDGETS) as bench:

        def first(http: httpx.Client) -> bool:
            codename = _first_submission(bench, http)
            if codename is not None:
                codenames.append(codename)
            return codename is not None

        def login(http: httpx.Client) -> bool:
            codename = codenames[next(turns) % len(codenames)]
            http.cookies.clear()
            response = bench.server.post_form(http, bench.server.source_url, "/login", "/login", {"codename": codename})
            return response.status_code == 303

        for name, work in (("new codenames (first submissions)", first), ("codename logins", login)):
            began = time.perf_counter()
            latencies = _run_clients(clients, work, runs=runs)
            elapsed = time.perf_counter() - began
            row = _rate_row(name, latencies, elapsed)
            rows.append([*row[:2], f"{len(latencies) / elapsed / raw:.2f}", *row[2:], f"{runs - len(latencies)}"])
    settings = Settings(data_dir=Path("."))
    return Table(
        "KDF-bound paths with production Argon2id costs",
        "report: per second, as a ratio to raw derive_source_keys on every core (at most the 2 KDF slots)",
        ["path", "per s", "ratio to raw", "p50 ms", "p95 ms", "refused (busy)"],
        rows,
        notes=[
            f"Argon2id t={settings.codename_kdf_time_cost}, m={settings.codename_kdf_memory_kib} KiB; "
            f"raw: {raw:.2f}/s in {slots} threads; {clients} clients, {runs} attempts each path",
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kdf-runs", type=int, default=24)
    args = parser.parse_args(argv)
    print(measure_small_tips(clients=args.clients, seconds=args.seconds).text(), end="\n\n")
    print(measure_kdf_paths(runs=args.kdf_runs).text())


if __name__ == "__main__":
    main()
