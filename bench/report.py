"""What every benchmark returns, and the helpers they share.

A benchmark module exposes ``measure(...) -> Table`` with keyword arguments for
its sizes, and ``main(argv)`` that parses flags and prints the table.
``bench.run_all`` calls ``measure`` and renders the tables into
docs/performance.md.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.settings import Settings
from tests.support import Instance, LiveServer, initialise, settings_for, spawn_server, stop_server

MB = 1_000_000

# The production Argon2id costs of codenames (the Settings defaults), for
# benchmarks whose figure is bound by the KDF. The editor KDF stays at test
# costs (hence insecure_fast_kdf stays on): no benchmark here logs editors in under load.
PRODUCTION_CODENAME_KDF: dict[str, object] = {
    "codename_kdf_time_cost": Settings.model_fields["codename_kdf_time_cost"].default,
    "codename_kdf_memory_kib": Settings.model_fields["codename_kdf_memory_kib"].default,
}


@dataclass
class Table:
    title: str
    goal: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    # None: a figure to report, with no goal to meet.
    met: bool | None = None
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        lines = [self.title, f"goal: {self.goal} -> {verdict(self.met)}"]
        lines.append("  ".join(c.rjust(w) for c, w in zip(self.columns, widths, strict=True)))
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in self.rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", f"Goal: {self.goal}. **{verdict(self.met)}**", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def verdict(met: bool | None) -> str:
    return "report only" if met is None else ("met" if met else "NOT met")


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Bench:
    """A throw-away instance served by a real ``buzon serve``."""

    server: LiveServer

    @property
    def instance(self) -> Instance:
        return self.server.instance

    @property
    def pid(self) -> int:
        return self.server.process.pid

    @property
    def root(self) -> Path:
        return self.server.tmp_dir.parent


@contextlib.contextmanager
def live_bench(prefix: str, **overrides: object) -> Iterator[Bench]:
    """Initialise an instance with ``overrides`` on top of the fast test settings and serve it."""
    root = Path(tempfile.mkdtemp(prefix=f"buzon-bench-{prefix}-"))
    try:
        instance = initialise(settings_for(root / "data", **overrides))
        tmp_dir = root / "server-tmp"
        tmp_dir.mkdir()
        log_path = root / "server.log"
        process, source_url, editor_url = spawn_server(instance.settings, tmp_dir, log_path)
        try:
            yield Bench(LiveServer(instance, source_url, editor_url, tmp_dir, log_path, process))
        finally:
            stop_server(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def random_codename() -> str:
    """Seven random words' worth of letters: the server cannot tell it from a real codename."""
    return " ".join(secrets.token_hex(3) for _ in range(7))


def client(timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout))
