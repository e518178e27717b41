"""Buzón installed the way a packager would: a wheel, plain pip, a fresh venv, no bootstrap script.

The wheel is built from a copy of the tree (so the checkout gains no build/ or
egg-info), installed with its pinned dependencies into a new venv, and then
``buzon init`` and ``buzon serve`` run from that venv alone. Every source page
must then answer in every shipped language: catalogs are read from the .po
files the wheel carries, with no compile step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.web.i18n import LOCALE_NAMES
from app.web.security import SECURITY_HEADERS
from tests.support import (
    PROJECT_ROOT,
    SettingsFactory,
    server_env,
    spawn_server,
    stop_server,
    translated,
)

SOURCE_PAGES = ("/", "/tor", "/submit", "/login")
PIP_TIMEOUT = 600


def _run(command: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def _pip_env() -> dict[str, str]:
    # Nothing of this venv may leak into the other: no PYTHONPATH, no VIRTUAL_ENV.
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv with the built wheel and the locked dependencies in it."""
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"
    tree.mkdir()
    shutil.copytree(PROJECT_ROOT / "app", tree / "app", ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, tree / name)
    env = _pip_env()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", work / "dist", tree], cwd=work, env=env)
    (wheel,) = (work / "dist").glob("buzon-*.whl")
    # The base interpreter, not this venv's: a venv made from a venv still starts from the base.
    _run([sys.executable, "-m", "venv", work / "venv"], cwd=work, env=env)
    python = work / "venv" / "bin" / "python"
    lock = PROJECT_ROOT / "deploy" / "requirements.lock"
    _run([python, "-m", "pip", "install", "-q", "--require-hashes", "-r", lock], cwd=work, env=env)
    _run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], cwd=work, env=env)
    return python


def test_the_venv_runs_the_installed_package_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = _run([installed, "-c", "import app; print(app.__file__)"], cwd=tmp_path, env=_pip_env()).strip()
    assert Path(where).is_relative_to(installed.parent.parent)
    assert not Path(where).is_relative_to(PROJECT_ROOT)


@pytest.fixture
def installed_server(installed: Path, tmp_path: Path, make_settings: SettingsFactory) -> Iterator[str]:
    """``buzon init`` and ``buzon serve`` from the installed venv; yields the source app's URL."""
    settings = make_settings(tmp_path / "data")
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    env = {**_pip_env(), **server_env(settings, server_tmp)}
    buzon = installed.parent / "buzon"
    assert "Recovery secret:" in _run([buzon, "init"], cwd=tmp_path, env=env)
    process, source_url, _ = spawn_server(settings, server_tmp, tmp_path / "server.log", python=installed, cwd=tmp_path)
    try:
        yield source_url
    finally:
        stop_server(process)


def test_every_source_page_answers_in_every_language_from_the_wheel(installed_server: str) -> None:
    for locale in sorted(LOCALE_NAMES):
        with httpx.Client(base_url=installed_server, timeout=30) as client:
            for path in SOURCE_PAGES:
                page = client.get(path, params={"lang": locale})
                assert page.status_code == 200, (locale, path)
                assert f'<html lang="{locale.replace("_", "-")}"' in page.text
                assert translated(locale, "Using Tor Browser safely") in page.text
                for name, value in SECURITY_HEADERS.items():
                    assert page.headers[name] == value
            missing = client.get("/no-such-page", params={"lang": locale})
            assert missing.status_code == 404
            assert translated(locale, "Page not found") in missing.text
            assert client.get("/static/style.css").status_code == 200


def test_a_package_verifies_on_a_clean_machine_with_only_the_wheel(
    installed: Path, tmp_path: Path, built_package: tuple[Path, Path]
) -> None:
    # What a prosecutor's examiner does: a fresh venv, the wheel, the package and the authority's CA.
    archive, ca = built_package
    elsewhere = tmp_path / "examiner"
    elsewhere.mkdir()
    shutil.copy(archive, elsewhere / "package.tar")
    shutil.copy(ca, elsewhere / "authority.pem")
    buzon = installed.parent / "buzon"
    env = {k: v for k, v in _pip_env().items() if not k.startswith("BUZON_")}
    out = _run([buzon, "evidence", "verify", "package.tar", "--tsa-ca", "authority.pem"], cwd=elsewhere, env=env)
    assert out.count(": verified, time-stamped ") == 2
    assert "NOT VERIFIED" not in out
