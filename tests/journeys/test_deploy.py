"""The deployment files, checked statically (CI runs no Docker engine), and /healthz live."""

from __future__ import annotations

import base64
import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nacl.public import PrivateKey

from app.settings import Settings
from app.web.security import SECURITY_HEADERS
from tests.support import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
STANZAS = DEPLOY / "tor" / "onion-services.torrc"
# The stanzas come with the real-Tor test (tests/journeys/test_tor.py); until they land, skip what reads them.
needs_stanzas = pytest.mark.skipif(not STANZAS.exists(), reason="deploy/tor/onion-services.torrc has not landed yet")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|[\w.+-]+-dev)\b")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


# --- compose -----------------------------------------------------------------------


def test_compose_has_buzon_and_tor_and_publishes_no_port() -> None:
    services = _services()
    assert set(services) == {"buzon", "tor"}
    for name, service in services.items():
        assert "ports" not in service, name
        assert "expose" not in service, name
        assert service.get("network_mode") is None, name


def test_compose_keeps_data_and_tor_keys_on_named_volumes() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    mounts = {name: service.get("volumes", []) for name, service in compose["services"].items()}
    for name, entries in mounts.items():
        for entry in entries:
            source = entry.split(":", 1)[0] if isinstance(entry, str) else entry["source"]
            assert source in declared, f"{name} mounts {source!r}, not a named volume"
    assert "buzon-data:/var/lib/buzon/data" in mounts["buzon"]
    assert "tor-keys:/var/lib/tor" in mounts["tor"]


def test_compose_services_run_unprivileged_on_a_read_only_root() -> None:
    for name, service in _services().items():
        assert service["user"] not in ("root", "0", 0), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not service.get("privileged"), name
    assert _services()["buzon"]["user"] == "buzon"


def test_buzon_is_only_on_an_internal_network_with_fixed_addresses_that_agree() -> None:
    compose, services = _compose(), _services()
    assert set(services["buzon"]["networks"]) == {"onion"}
    assert compose["networks"]["onion"]["internal"] is True
    subnet = ipaddress.ip_network(compose["networks"]["onion"]["ipam"]["config"][0]["subnet"])
    buzon_ip = services["buzon"]["networks"]["onion"]["ipv4_address"]
    tor_ip = services["tor"]["networks"]["onion"]["ipv4_address"]
    assert ipaddress.ip_address(buzon_ip) in subnet
    assert ipaddress.ip_address(tor_ip) in subnet
    # tor resolves HiddenServicePort targets once, so they are fixed addresses.
    assert services["tor"]["environment"]["BUZON_ADDRESS"] == buzon_ip
    assert services["buzon"]["environment"]["BUZON_DOCTOR_TOR"] == f"{tor_ip}:9050"
    assert f"SocksPort {tor_ip}:9050" in _torrc_lines(DEPLOY / "tor" / "torrc")


# --- tor ---------------------------------------------------------------------------


def _torrc_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _onion_services(path: Path) -> dict[str, list[str]]:
    """Each HiddenServiceDir's options, keyed by the local port it forwards to."""
    stanzas: list[list[str]] = []
    for line in _torrc_lines(path):
        if line.startswith("HiddenServiceDir "):
            stanzas.append([line])
        elif line.startswith("HiddenService"):
            assert stanzas, line
            stanzas[-1].append(line)
    by_port: dict[str, list[str]] = {}
    for stanza in stanzas:
        ports = [line.rsplit(":", 1)[1] for line in stanza if line.startswith("HiddenServicePort ")]
        assert len(ports) == 1, stanza
        by_port[ports[0]] = stanza
    return by_port


@needs_stanzas
def test_the_source_service_has_proof_of_work_and_the_editor_service_its_own_directory() -> None:
    services = _onion_services(STANZAS)
    assert set(services) == {"8080", "8081"}
    assert "HiddenServicePoWDefensesEnabled 1" in services["8080"]
    assert "HiddenServiceVersion 3" in services["8080"]
    assert "HiddenServiceVersion 3" in services["8081"]
    source_dir, editor_dir = (s[0].split(maxsplit=1)[1] for s in (services["8080"], services["8081"]))
    assert source_dir != editor_dir
    # Both keys live on the tor-keys volume.
    assert source_dir.startswith("/var/lib/tor/")
    assert editor_dir.startswith("/var/lib/tor/")


def test_the_container_torrc_includes_the_stanzas_the_entrypoint_writes() -> None:
    torrc = _torrc_lines(DEPLOY / "tor" / "torrc")
    assert "%include /tmp/buzon-tor/onion-services.torrc" in torrc
    assert "DataDirectory /var/lib/tor" in torrc
    assert "SocksPolicy reject *" in torrc
    dockerfile = (DEPLOY / "tor" / "Dockerfile").read_text()
    assert "COPY deploy/tor/onion-services.torrc /etc/tor/onion-services.torrc" in dockerfile


def _tor_sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The shipped stanzas with their directories moved under tmp_path."""
    stanzas = STANZAS.read_text().replace("/var/lib/tor/", f"{tmp_path}/var/")
    (tmp_path / "stanzas.torrc").write_text(stanzas)
    (tmp_path / "var").mkdir(mode=0o700)
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "BUZON_TOR_STANZAS": str(tmp_path / "stanzas.torrc"),
        "BUZON_TOR_GENERATED": str(tmp_path / "generated"),
        "BUZON_ADDRESS": "10.89.66.2",
    }
    return tmp_path / "stanzas.torrc", env


def _editor_clients(stanzas: Path) -> Path:
    editor = _onion_services(stanzas)["8081"]
    return Path(editor[0].split(maxsplit=1)[1]) / "authorized_clients"


needs_openssl = pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("base32")), reason="needs openssl and base32"
)


@needs_stanzas
@needs_openssl
def test_editor_key_makes_a_client_authorisation_key_pair(tmp_path: Path) -> None:
    stanzas, env = _tor_sandbox(tmp_path)
    script = str(DEPLOY / "tor" / "editor-key.sh")
    added = subprocess.run([script, "add", "ana"], env=env, capture_output=True, text=True, check=True)
    private = re.search(r"^Private key: ([A-Z2-7]{52})$", added.stdout, re.MULTILINE)
    assert private is not None
    auth = (_editor_clients(stanzas) / "ana.auth").read_text()
    public = re.fullmatch(r"descriptor:x25519:([A-Z2-7]{52})\n", auth)
    assert public is not None
    # The public half on disk belongs to the private half the editor gets.
    private_key = PrivateKey(_b32(private.group(1)))
    assert bytes(private_key.public_key) == _b32(public.group(1))
    assert private.group(1) not in "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert (_editor_clients(stanzas) / "ana.auth").stat().st_mode & 0o077 == 0

    again = subprocess.run([script, "add", "ana"], env=env, capture_output=True, text=True)
    assert again.returncode == 1
    listed = subprocess.run([script, "list"], env=env, capture_output=True, text=True, check=True)
    assert listed.stdout == "ana\n"
    subprocess.run([script, "remove", "ana"], env=env, capture_output=True, check=True)
    assert not (_editor_clients(stanzas) / "ana.auth").exists()


def _b32(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _fake_tor(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake = tmp_path / "bin" / "tor"
    fake.write_text('#!/bin/sh\necho "tor $*"\n')
    fake.chmod(0o755)


@needs_stanzas
def test_tor_refuses_to_start_the_editor_service_without_a_client_key(tmp_path: Path) -> None:
    _, env = _tor_sandbox(tmp_path)
    _fake_tor(tmp_path)
    result = subprocess.run([str(DEPLOY / "tor" / "entrypoint.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "editor-key add" in result.stderr
    assert "tor -f" not in result.stdout


@needs_stanzas
@needs_openssl
def test_tor_starts_with_a_client_key_and_points_the_services_at_the_buzon_container(tmp_path: Path) -> None:
    stanzas, env = _tor_sandbox(tmp_path)
    _fake_tor(tmp_path)
    subprocess.run([str(DEPLOY / "tor" / "editor-key.sh"), "add", "ana"], env=env, capture_output=True, check=True)
    result = subprocess.run([str(DEPLOY / "tor" / "entrypoint.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tor -f /etc/tor/torrc\n"
    generated = _onion_services(tmp_path / "generated" / "onion-services.torrc")
    shipped = _onion_services(stanzas)
    # Only the targets change: PoW and every other option stay as shipped.
    assert [line for line in generated["8080"] if "Port " not in line] == [
        line for line in shipped["8080"] if "Port " not in line
    ]
    assert "HiddenServicePort 80 10.89.66.2:8080" in generated["8080"]
    assert "HiddenServicePort 80 10.89.66.2:8081" in generated["8081"]


@pytest.mark.skipif(shutil.which("tor") is None, reason="Debian's tor is not installed")
@needs_stanzas
@needs_openssl
def test_tor_accepts_the_container_configuration(tmp_path: Path) -> None:
    _, env = _tor_sandbox(tmp_path)
    _fake_tor(tmp_path)
    subprocess.run([str(DEPLOY / "tor" / "editor-key.sh"), "add", "ana"], env=env, capture_output=True, check=True)
    subprocess.run([str(DEPLOY / "tor" / "entrypoint.sh")], env=env, capture_output=True, check=True)
    torrc = (DEPLOY / "tor" / "torrc").read_text()
    torrc = torrc.replace("DataDirectory /var/lib/tor", f"DataDirectory {tmp_path / 'data'}")
    torrc = torrc.replace("/tmp/buzon-tor/", f"{tmp_path / 'generated'}/")
    (tmp_path / "torrc").write_text(torrc)
    (tmp_path / "defaults").write_text("")
    tor = shutil.which("tor")
    assert tor is not None
    command = [tor, "--defaults-torrc", str(tmp_path / "defaults"), "-f", str(tmp_path / "torrc"), "--verify-config"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    assert "Configuration was valid" in result.stdout


# --- Dockerfiles ---------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    lines = (line.strip() for line in joined.splitlines())
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(path):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _no_build_tools(stage: list[tuple[str, str]]) -> None:
    for name, args in stage:
        if name == "RUN" and "install" in args:
            assert not BUILD_TOOLS.search(args), args


def test_dockerfile_is_multi_stage_and_installs_from_the_lock_with_hashes() -> None:
    stages = _stages(ROOT / "Dockerfile")
    assert len(stages) >= 2
    build = " ".join(args for stage in stages[:-1] for name, args in stage if name == "RUN")
    assert re.search(r"pip install --require-hashes -r /tmp/requirements\.lock", build)
    assert ("COPY", "deploy/requirements.lock /tmp/requirements.lock") in stages[0]
    # The templates, stylesheet and .po catalogs live inside app/, the one directory copied.
    assert ("COPY", "app /opt/buzon/app") in stages[0]


def test_the_final_image_is_slim_unprivileged_and_checks_its_health() -> None:
    final = _stages(ROOT / "Dockerfile")[-1]
    names = [name for name, _ in final]
    assert final[0][1].startswith(("python:3.11-slim", "debian:bookworm-slim"))
    users = [args for name, args in final if name == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in names
    healthcheck = next(args for name, args in final if name == "HEALTHCHECK")
    assert "python" in healthcheck
    assert "curl" not in healthcheck
    assert "EXPOSE" not in names
    assert any(name == "COPY" and args.startswith("--from=build /venv") for name, args in final)
    _no_build_tools(final)
    assert ("ENTRYPOINT", '["buzon"]') in final
    assert ("CMD", '["serve", "--host", "0.0.0.0"]') in final


def test_the_tor_image_runs_debian_tor_unprivileged() -> None:
    (stage,) = _stages(DEPLOY / "tor" / "Dockerfile")
    assert stage[0] == ("FROM", "debian:bookworm-slim")
    install = next(args for name, args in stage if name == "RUN")
    assert "apt-get install -y --no-install-recommends tor openssl" in install
    assert [args for name, args in stage if name == "USER"] == ["debian-tor"]
    assert any(name == "HEALTHCHECK" for name, _ in stage)
    _no_build_tools(stage)


# --- systemd and nginx ----------------------------------------------------------------


def _unit(path: Path) -> dict[str, list[str]]:
    """Service-section settings; keys may repeat, as systemd allows."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in _torrc_lines(path):
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_systemd_unit_is_hardened() -> None:
    unit = _unit(DEPLOY / "systemd" / "buzon.service")
    required = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "LockPersonality": "yes",
        "RestrictNamespaces": "yes",
        "UMask": "0077",
        "EnvironmentFile": "/etc/buzon/buzon.env",
        "ReadWritePaths": "/var/lib/buzon",
        "User": "buzon",
    }
    for key, value in required.items():
        assert unit.get(key) == [value], key
    assert "@system-service" in unit["SystemCallFilter"]
    (exec_start,) = unit["ExecStart"]
    assert "serve --host 127.0.0.1" in exec_start


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # The virtual environment is not installed here: point ExecStart at a binary that is.
    text = (DEPLOY / "systemd" / "buzon.service").read_text()
    unit = tmp_path / "buzon.service"
    unit.write_text(text.replace("ExecStart=/opt/buzon/.venv/bin/buzon ", "ExecStart=/bin/true "))
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze is not None
    result = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _nginx_directives() -> list[list[str]]:
    text = re.sub(r"#.*", "", (DEPLOY / "nginx" / "buzon.conf").read_text())
    return [statement.split() for statement in re.split(r"[;{}]", text) if statement.strip()]


def test_nginx_logs_and_forwards_nothing_about_the_client() -> None:
    directives = _nginx_directives()
    text = (DEPLOY / "nginx" / "buzon.conf").read_text()
    assert "$proxy_add_x_forwarded_for" not in text
    assert "$remote_addr" not in text
    for words in directives:
        if words[0] == "access_log":
            assert words[1:] == ["off"]
        if words[0] == "proxy_set_header" and words[1].lower() in ("x-forwarded-for", "x-real-ip", "forwarded"):
            assert words[2:] == ['""'], words
        if words[0] == "listen":
            assert words[1].startswith("127.0.0.1:"), words
    servers = sum(1 for words in directives if words == ["server"])
    for setting in (["access_log", "off"], ["server_tokens", "off"], ["proxy_request_buffering", "off"]):
        assert directives.count(setting) == servers, setting
    assert directives.count(["proxy_buffering", "off"]) == servers


def test_nginx_lets_the_largest_submission_reach_buzon() -> None:
    sizes = [words[1] for words in _nginx_directives() if words[0] == "client_max_body_size"]
    source_limit = int(sizes[0].removesuffix("m")) * 1024 * 1024
    assert source_limit > Settings.model_fields["max_submission_bytes"].default


# --- /healthz -------------------------------------------------------------------------


def test_healthz_says_ok_and_nothing_else_on_both_interfaces(live_server: LiveServer, client: httpx.Client) -> None:
    for base in (live_server.source_url, live_server.editor_url):
        response = client.get(f"{base}/healthz")
        assert response.status_code == 200
        assert response.content == b"ok"
        assert response.headers["content-type"].startswith("text/plain")
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, name
        for name in ("server", "date", "etag", "last-modified"):
            assert name not in response.headers, name


def test_the_container_healthcheck_script(live_server: LiveServer) -> None:
    script = str(DEPLOY / "docker" / "healthcheck.py")
    ports = [url.rsplit(":", 1)[1] for url in (live_server.source_url, live_server.editor_url)]
    assert subprocess.run([sys.executable, script, *ports], timeout=30).returncode == 0
    assert subprocess.run([sys.executable, script, ports[0], str(free_port())], timeout=30).returncode == 1


MDWE_PROBE = """
import ctypes, sys
# PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: what systemd's MemoryDenyWriteExecute= enforces.
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(77)
import io, pikepdf, pillow_heif
from PIL import Image
from app import crypto
pair = crypto.generate_keypair()
assert crypto.seal_open(pair, crypto.seal(pair.public, b"tip")) == b"tip"
params = crypto.KdfParams(time_cost=1, memory_kib=8)
crypto.wrap_secret_key(pair.secret, "a passphrase long enough", params)
buffer = io.BytesIO()
Image.new("RGB", (8, 8)).save(buffer, "JPEG")
Image.open(io.BytesIO(buffer.getvalue())).load()
pdf = pikepdf.new(); pdf.add_blank_page(); pdf.save(io.BytesIO())
pillow_heif.register_heif_opener()
"""


def test_the_native_libraries_work_without_writable_executable_memory() -> None:
    result = subprocess.run([sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=60)
    if result.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert result.returncode == 0, result.stderr
