"""Fixtures: fast settings, an initialised instance and real servers.

Servers run as real ``buzon serve`` subprocesses on free ports, with their own
TMPDIR so tests can scan it, and are stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    initialise,
    make_settings,
    spawn_server,
    stop_server,
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
        process, source_url, editor_url = spawn_server(instance.settings, tmp_dir, log_path)
        server = LiveServer(instance, source_url, editor_url, tmp_dir, log_path, process)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server.process)


@pytest.fixture
def live_server(instance: Instance, server_factory: ServerFactory) -> LiveServer:
    return server_factory(instance)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c
