"""The import contracts in pyproject.toml hold, and break when the shape of app/ does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


def _copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("services/audit.py", "import fastapi", "know nothing of HTTP"),
        ("media/filetypes.py", "from app.db import models", "hold no database"),
        ("routers/source.py", "from app.routers import admin", "never reaches editor routes"),
        ("web/security.py", "import alembic", "never loads the operator tools"),
        ("routers/editor.py", "def _lazy() -> None:\n    from app.ops import backup", "never loads the operator tools"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = _copy_of_the_package(tmp_path)
    with (root / "app" / module).open("a") as f:
        f.write(f"\n\n{line}  # noqa\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout
    broken = [text for text in result.stdout.splitlines() if text.endswith("BROKEN")]
    assert len(broken) == 1, result.stdout
    assert contract in broken[0]


CALENDAR_CLOCKS = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|datetime\.today)\(")


def test_only_app_clock_reads_the_calendar() -> None:
    # Everything stored in the clear is dated by app/clock.py's utc_today, so a
    # module that reads the calendar itself could write a finer time to disk.
    readers = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sorted((PROJECT_ROOT / "app").rglob("*.py"))
        if path.name != "clock.py" and CALENDAR_CLOCKS.search(path.read_text())
    ]
    assert readers == []
