"""An unexpected error answers with a page and leaves only a count: no traceback, route, input or time in a log."""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_source_app
from tests.support import Instance, LiveServer, stop_server, submit_tip
from tests.support.inprocess import TestClient

BASE_URL = "http://127.0.0.1:8080"
A_TIME = re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\b|\b\d{4}-\d{2}-\d{2}\b")


def _crashing_app(instance: Instance, secret: str) -> FastAPI:
    app = create_source_app(instance.settings)

    async def crash(detail: str) -> None:
        raise RuntimeError(f"{secret} {detail}")

    app.add_api_route("/crash/{detail}", crash, methods=["GET"])
    return app


def test_an_unexpected_error_is_answered_and_counted_but_not_raised_or_logged(
    instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    secret = secrets.token_hex(8)
    app = _crashing_app(instance, secret)
    caplog.set_level(logging.DEBUG)
    try:
        # raise_server_exceptions=True: an exception leaving the app would fail here, as it reaches uvicorn.
        with TestClient(app, base_url=BASE_URL) as client:
            response = client.get("/crash/source-input")
            assert response.status_code == 500
            assert "Something went wrong" in response.text
            assert app.state.failures.unreported == 1
    finally:
        app.state.engine.dispose()
    # The test's own HTTP client logs the URL it asked for; everything else is the server's.
    records = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_info}" for r in records)
    assert secret not in logged
    assert "source-input" not in logged
    assert "/crash" not in logged
    assert not any(r.exc_info for r in records)
    # The shutdown report: a fixed line and a number.
    assert [r.getMessage() for r in records if r.name == "buzon.failures"] == [
        "1 request(s) failed unexpectedly since the last report"
    ]


def test_a_failure_a_source_provokes_leaves_no_trace_of_their_request_in_the_server_log(
    live_server: LiveServer, client: httpx.Client
) -> None:
    marker = f"tip-{secrets.token_hex(6)}"
    # A store that vanished under the server: every upload now fails inside the app.
    shutil.rmtree(live_server.instance.settings.store_dir)
    response = submit_tip(live_server, client, f"The mayor's accountant: {marker}")
    assert response.status_code == 500
    assert marker not in response.text
    stop_server(live_server.process)
    log = live_server.log_path.read_text()
    assert "1 request(s) failed unexpectedly since the last report" in log
    assert "Traceback" not in log
    assert marker not in log
    assert "/submit" not in log
    assert "store" not in log.lower()
    assert A_TIME.search(log) is None, log


def _core_limit(pid: int) -> str:
    (line,) = [line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if "core file size" in line]
    return line


def test_a_serving_process_writes_no_core_dump(live_server: LiveServer) -> None:
    assert _core_limit(live_server.process.pid).split()[4:6] == ["0", "0"]


def test_forbidding_core_dumps_also_makes_the_process_undumpable(tmp_path: Path) -> None:
    script = (
        "from app.hardening import forbid_core_dumps, is_dumpable\n"
        "import resource\n"
        "before = is_dumpable()\n"
        "forbid_core_dumps()\n"
        "print(before, is_dumpable(), resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert result.stdout.split("\n")[0] == "True False (0, 0)"
