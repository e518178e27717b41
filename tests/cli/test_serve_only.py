"""`buzon serve --only`: extra source machines run the source interface alone."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import Instance, free_port, server_env, stop_server, wait_for_port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(("only", "served_title"), [("source", "<html"), ("editor", "Log in")])
def test_only_one_interface_listens(instance: Instance, tmp_path: Path, only: str, served_title: str) -> None:
    ports = {"source": free_port(), "editor": free_port()}
    other = "editor" if only == "source" else "source"
    command = [sys.executable, "-m", "app", "serve", "--only", only]
    command += ["--source-port", str(ports["source"]), "--editor-port", str(ports["editor"])]
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=server_env(instance.settings, tmp_path), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(ports[only], process)
        page = httpx.get(f"http://127.0.0.1:{ports[only]}/", follow_redirects=True, timeout=30)
        assert page.status_code == 200
        assert served_title in page.text
        assert not _listening(ports[other])
    finally:
        stop_server(process)
    assert other.capitalize() not in (tmp_path / "serve.log").read_text()
