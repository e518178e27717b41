"""Fixtures: fast settings, an initialised instance and real servers.

Servers run as real ``buzon serve`` subprocesses on free ports, with their own
TMPDIR so tests can scan it, and are stopped when the test ends.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    free_port,
    initialise,
    make_settings,
    server_env,
    wait_for_port,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def instance(settings: Settings) -> Instance:
    return initialise(settings)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[LiveServer] = []

    def start(instance: Instance) -> LiveServer:
        tmp_dir = tmp_path / f"server-tmp-{len(started)}"
        tmp_dir.mkdir()
        log_path = tmp_path / f"server-{len(started)}.log"
        source_port, editor_port = free_port(), free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app",
                    "serve",
                    "--source-port",
                    str(source_port),
                    "--editor-port",
                    str(editor_port),
                ],
                env=server_env(instance.settings, tmp_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(
            instance,
            f"http://127.0.0.1:{source_port}",
            f"http://127.0.0.1:{editor_port}",
            tmp_dir,
            log_path,
            process,
        )
        started.append(server)
        wait_for_port(source_port, process)
        wait_for_port(editor_port, process)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def live_server(instance: Instance, server_factory: ServerFactory) -> LiveServer:
    return server_factory(instance)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c
