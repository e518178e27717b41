"""Real Tor: a tip sent through the shipped onion service, read back through the editor's.

The network (tests/support/tornet.py) is private and on 127.0.0.1 only; it starts once
per session and takes one to four minutes. Without Debian's tor these tests
skip, unless BUZON_REQUIRE_TOR=1 (tests/run.sh sets it) makes that a failure.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import LiveServer, SettingsFactory, codename_in, initialise, spawn_server, stop_server, submit_tip
from tests.support.socks import (
    ONION_DESCRIPTOR_NOT_FOUND,
    ONION_MISSING_CLIENT_AUTH,
    ONION_WRONG_CLIENT_AUTH,
    SocksError,
    TorTransport,
)
from tests.support.torcontrol import LOOPBACK, TorNetError
from tests.support.torkeys import public_directories
from tests.support.tornet import ONION_SERVICES_TORRC, TorNet, find_tor, start_network

pytestmark = pytest.mark.tor

FIRST_CONTACT_SECONDS = 180
CLIENT_AUTH_ERRORS = (ONION_MISSING_CLIENT_AUTH, ONION_WRONG_CLIENT_AUTH)


@pytest.fixture(scope="session")
def tor_binaries() -> tuple[str, str]:
    found = find_tor()
    if found is None:
        reason = "Debian's tor is not installed (apt-get install tor)"
        if os.environ.get("BUZON_REQUIRE_TOR") == "1":
            pytest.fail(f"{reason}, and BUZON_REQUIRE_TOR=1 requires the real-Tor tests")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def tornet(tor_binaries: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorNet]:
    tor, gencert = tor_binaries
    try:
        net = start_network(tmp_path_factory.mktemp("tornet"), tor, gencert)
    except TorNetError as e:
        pytest.fail(str(e), pytrace=False)
    print(f"private Tor network up in {net.bring_up_seconds:.0f} s")  # shown with -s
    yield net
    net.stop()


def _first_contact(net: TorNet, client: httpx.Client, url: str) -> httpx.Response:
    """GET ``url``, retrying while the client cannot yet find the service's descriptor."""
    deadline = time.monotonic() + FIRST_CONTACT_SECONDS
    while True:
        try:
            return client.get(url)
        except SocksError as e:
            # Usually 0xF0 right after the upload; new circuits and one retry
            # fix it. A missing or wrong client key will not go away.
            if e.reply in CLIENT_AUTH_ERRORS or time.monotonic() > deadline:
                raise
            net.new_identity()
            time.sleep(2)


def test_a_tip_sent_through_the_onion_service_is_read_in_the_editor_portal(
    tornet: TorNet, tmp_path: Path, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data", onion_address=tornet.source_onion)
    instance = initialise(settings)
    (tmp_path / "server-tmp").mkdir()
    log_path = tmp_path / "server.log"
    # On the ports the onion services point to.
    ports = (tornet.source_port, tornet.editor_port)
    process, _, _ = spawn_server(settings, tmp_path / "server-tmp", log_path, ports)
    source_url, editor_url = f"http://{tornet.source_onion}", f"http://{tornet.editor_onion}"
    server = LiveServer(instance, source_url, editor_url, tmp_path / "server-tmp", log_path, process)
    marker = f"TORMARKER{secrets.token_hex(8)}"
    try:
        with httpx.Client(transport=TorTransport(tornet.socks_port), timeout=120) as client:
            form = _first_contact(tornet, client, f"{source_url}/submit")
            assert form.status_code == 200
            # Served under the configured onion name: no "wrong address" redirect hint.
            assert "onion-location" not in form.headers

            response = submit_tip(server, client, f"Sent over Tor: {marker}", [(f"{marker}.txt", b"evidence\n")])
            assert response.status_code == 200, response.text
            assert len(codename_in(response.text).split()) == 7

            login = _first_contact(tornet, client, f"{editor_url}/login")
            assert login.status_code == 200
            editor = instance.add_editor()
            server.login(client, editor)
            inbox = client.get(f"{editor_url}/")
            source_links = re.findall(r'href="(/sources/[0-9a-f]+)"', inbox.text)
            assert len(source_links) == 1
            page = client.get(f"{editor_url}{source_links[0]}")
            assert page.status_code == 200
            assert f"Sent over Tor: {marker}" in page.text
            assert f"{marker}.txt" in page.text
    finally:
        stop_server(process)


def test_the_editor_portal_refuses_a_tor_client_without_its_key(tornet: TorNet) -> None:
    # Tor silently turns client authorisation off when no key file loads, so
    # reaching the portal with a key proves nothing; being refused without one does.
    tornet.forget_editor_key()
    try:
        with httpx.Client(transport=TorTransport(tornet.socks_port), timeout=120) as client:
            for _ in range(3):
                tornet.new_identity()
                with pytest.raises(SocksError) as refused:
                    client.get(f"http://{tornet.editor_onion}/login")
                if refused.value.reply != ONION_DESCRIPTOR_NOT_FOUND:
                    break
        assert refused.value.reply == ONION_MISSING_CLIENT_AUTH
    finally:
        tornet.restore_editor_key()


def test_the_service_runs_the_shipped_onion_configuration(tornet: TorNet) -> None:
    shipped = ONION_SERVICES_TORRC.read_text().splitlines()
    running = tornet.extra_torrcs[0].read_text().splitlines()
    assert f"%include {tornet.extra_torrcs[0]}" in tornet.node("service").torrc.read_text().splitlines()
    changed = [(a, b) for a, b in zip(shipped, running, strict=True) if a != b]
    assert [a.split()[0] for a, _ in changed] == ["HiddenServiceDir", "HiddenServicePort"] * 2


def test_the_service_runs_with_proof_of_work_defences(tornet: TorNet) -> None:
    rend_log = (tornet.node("service").directory / "rend.log").read_text()
    # Each time tor reads its configuration: source (on), then editor (off).
    states = re.findall(r"Service PoW defenses are (\w+)", rend_log)
    assert states
    assert states == ["enabled", "disabled"] * (len(states) // 2)
    # At run time: seeds for the one service with defences, and puzzle
    # parameters in its descriptors.
    assert rend_log.count("initialize_pow_defenses(): Generating both PoW seeds") == 1
    assert "update_all_descriptors_pow_params(): Initializing pow_params in descriptor" in rend_log


def test_every_tor_socket_is_on_loopback(tornet: TorNet) -> None:
    assert len(tornet.pids) == len(tornet.nodes)
    connections = [c for pid in tornet.pids for c in psutil.Process(pid).net_connections(kind="all")]
    established = [c for c in connections if c.status == psutil.CONN_ESTABLISHED]
    assert len(established) > 10  # the network is talking
    for connection in connections:
        if connection.family == socket.AF_UNIX:
            continue  # tor's internal socketpairs
        assert connection.family == socket.AF_INET, connection  # no IPv6 at all
        assert connection.type == socket.SOCK_STREAM, connection  # no UDP (no DNS)
        assert connection.laddr.ip == LOOPBACK, connection
        assert not connection.raddr or connection.raddr.ip == LOOPBACK, connection


def test_every_configured_address_is_loopback(tornet: TorNet) -> None:
    for torrc in tornet.torrc_files():
        lines = [line for line in torrc.read_text().splitlines() if line and not line.startswith("#")]
        for line in lines:
            for address in re.findall(r"\d+\.\d+\.\d+\.\d+", line):
                assert address == LOOPBACK, (torrc, line)
            if line.split()[0] in ("ORPort", "DirPort", "SocksPort", "ControlPort"):
                assert re.fullmatch(r"0|127\.0\.0\.1:\d+", line.split()[1]), (torrc, line)
    for node in tornet.nodes:
        lines = node.torrc.read_text().splitlines()
        assert "UseDefaultFallbackDirs 0" in lines
        assert len([line for line in lines if line.startswith("DirAuthority ")]) == 3


def test_the_logs_name_no_public_directory(tornet: TorNet, tor_binaries: tuple[str, str]) -> None:
    names, addresses = public_directories(tor_binaries[0])
    assert {"moria1", "tor26", "dizum", "gabelmoo", "maatuska"} <= names  # the binary's list was found
    logs = [path for node in tornet.nodes for path in node.directory.glob("*.log")]
    assert len(logs) > len(tornet.nodes)  # every tor.log, and the service's rend.log
    for log in logs:
        text = log.read_text(errors="replace")
        words = set(re.findall(r"[\w.]+", text.lower()))
        assert not words & {name.lower() for name in names}, log
        assert not set(re.findall(r"\d+\.\d+\.\d+\.\d+", text)) & addresses, log
