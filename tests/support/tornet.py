"""A private Tor network on 127.0.0.1 with Debian's tor, for the real-Tor test.

Three directory authorities (also relays), a few middle relays, an onion-service
node running the shipped deploy/tor/onion-services.torrc, and a client node,
all on 127.0.0.1. docs/tor.md explains the options and the timing tricks.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nacl.public

from tests.support import free_port
from tests.support.torcontrol import LOOPBACK, Control, TorNetError
from tests.support.torkeys import AuthorityKeys, authority_keys

ROOT = Path(__file__).resolve().parents[2]
ONION_SERVICES_TORRC = ROOT / "deploy" / "tor" / "onion-services.torrc"
BRING_UP_SECONDS = 480
VOTING_INTERVAL = 30
MIDDLE_RELAYS = 3


def find_tor() -> tuple[str, str] | None:
    """Paths of tor and tor-gencert (Debian puts tor in /usr/sbin), or None."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin"
    tor, gencert = shutil.which("tor", path=path), shutil.which("tor-gencert", path=path)
    return (tor, gencert) if tor and gencert else None


# --- configuration -----------------------------------------------------------------------------


def render_onion_services(template: str, *, service_root: Path, ports: dict[int, int]) -> str:
    """The shipped stanzas with only the service directories and target ports replaced."""
    lines = []
    for line in template.splitlines():
        option, _, value = line.partition(" ")
        if option == "HiddenServiceDir":
            line = f"{option} {service_root / Path(value).name}"
        elif option == "HiddenServicePort":
            virtual_port, target = value.split()
            host, port = target.rsplit(":", 1)
            line = f"{option} {virtual_port} {host}:{ports[int(port)]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass
class Node:
    name: str
    directory: Path
    or_port: int | None = None
    dir_port: int | None = None
    control_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def torrc(self) -> Path:
        return self.directory / "torrc"

    @property
    def log(self) -> Path:
        return self.directory / "tor.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _common_options(node: Node, dir_authorities: list[str], empty: Path) -> list[str]:
    return [
        "TestingTorNetwork 1",
        f"Nickname {node.name}",
        f"DataDirectory {node.directory}",
        "RunAsDaemon 0",
        "Sandbox 0",
        "Log notice stdout",
        "ShutdownWaitLength 2",
        # Exit when the test session does, even if it is killed.
        f"__OwningControllerProcess {os.getpid()}",
        # The private authorities replace the public ones, and no public
        # fallback directory is ever loaded.
        *dir_authorities,
        "UseDefaultFallbackDirs 0",
        f"Address {LOOPBACK}",
        f"OutboundBindAddress {LOOPBACK}",
        "ClientUseIPv6 0",
        "AddressDisableIPv6 1",
        # Parsing Debian's GeoIP files costs ~15 s of CPU per process.
        f"GeoIPFile {empty}",
        f"GeoIPv6File {empty}",
        # Unbounded consensus diffs eat a core within 20 minutes.
        "MaxConsensusAgeForDiffs 2 minutes",
        "PathsNeededToBuildCircuits 0.67",
        "LearnCircuitBuildTimeout 0",
    ]


def _relay_options(node: Node, resolv_conf: Path) -> list[str]:
    return [
        f"ORPort {LOOPBACK}:{node.or_port} IPv4Only",
        "ContactInfo buzon-tornet",
        "ExitRelay 0",
        "ExitPolicy reject *:*",
        "AssumeReachable 1",
        "ServerDNSDetectHijacking 0",
        f"ServerDNSResolvConfFile {resolv_conf}",
    ]


def _authority_options(node: Node) -> list[str]:
    return [
        f"DirPort {LOOPBACK}:{node.dir_port}",
        "AuthoritativeDirectory 1",
        "V3AuthoritativeDirectory 1",
        "AuthDirTestReachability 0",
        "TestingDirAuthVoteHSDir *",
        "TestingDirAuthVoteGuard *",
        "TestingDirAuthVoteExit *",
        # Onion circuits need Stable relays; without these bootstrap stalls at 95%.
        "AuthDirVoteStableGuaranteeMinUptime 0",
        "AuthDirVoteStableGuaranteeMTBF 0",
        # 30/7/7: a 20/4/4 schedule lost whole rounds on a starved CPU.
        f"V3AuthVotingInterval {VOTING_INTERVAL}",
        "V3AuthVoteDelay 7",
        "V3AuthDistDelay 7",
        f"TestingV3AuthInitialVotingInterval {VOTING_INTERVAL}",
        "TestingV3AuthInitialVoteDelay 7",
        "TestingV3AuthInitialDistDelay 7",
        "V3AuthNIntervalsValid 2",
    ]


def _control_options(node: Node) -> list[str]:
    return [
        f"ControlPort {LOOPBACK}:{node.control_port}",
        "CookieAuthentication 1",
        # Started offline: switched on once the first consensus is published,
        # otherwise it fetches a consensus that does not exist yet and backs off.
        "DisableNetwork 1",
    ]


# --- the network ---------------------------------------------------------------------------------


def _b32(key: bytes) -> str:
    """Tor's key encoding in client-authorisation files: base32, unpadded."""
    return base64.b32encode(key).decode().rstrip("=")


@dataclass
class TorNet:
    root: Path
    nodes: list[Node]
    source_port: int
    editor_port: int
    socks_port: int
    extra_torrcs: list[Path]
    bring_up_seconds: float = 0.0
    source_onion: str = ""
    editor_onion: str = ""
    editor_client_key: bytes = field(default=b"", repr=False)
    controls: dict[str, Control] = field(default_factory=dict, repr=False)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    @property
    def pids(self) -> list[int]:
        return [node.process.pid for node in self.nodes if node.process is not None]

    def torrc_files(self) -> list[Path]:
        return [node.torrc for node in self.nodes] + self.extra_torrcs

    def forget_editor_key(self) -> None:
        """Drop the client's editor-portal key (and with it the decrypted descriptor)."""
        self.controls["client"].command(f"ONION_CLIENT_AUTH_REMOVE {self.editor_onion.removesuffix('.onion')}")

    def restore_editor_key(self) -> None:
        key = base64.b64encode(self.editor_client_key).decode()
        self.controls["client"].command(
            f"ONION_CLIENT_AUTH_ADD {self.editor_onion.removesuffix('.onion')} x25519:{key}"
        )

    def new_identity(self) -> None:
        """New circuits for new streams: clears a failed onion descriptor fetch."""
        self.controls["client"].command("SIGNAL NEWNYM")

    def tails(self, names: tuple[str, ...] = ("auth0", "service", "client"), lines: int = 25) -> str:
        parts = []
        for node in self.nodes:
            if node.name in names or (node.process is not None and node.process.poll() is not None):
                tail = "\n".join(node.log_text().splitlines()[-lines:])
                parts.append(f"--- {node.log} (last {lines} lines) ---\n{tail}")
        return "\n".join(parts)

    def stop(self) -> None:
        for control in self.controls.values():
            control.close()
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()


def _distinct_ports(count: int) -> Iterator[int]:
    seen: set[int] = set()
    while len(seen) < count:
        port = free_port()
        if port not in seen:
            seen.add(port)
            yield port


def _layout(root: Path, ports: Iterator[int]) -> list[Node]:
    nodes = [Node(f"auth{i}", root / f"auth{i}", next(ports), next(ports)) for i in range(3)]
    nodes += [Node(f"relay{i}", root / f"relay{i}", next(ports)) for i in range(MIDDLE_RELAYS)]
    nodes += [Node("service", root / "service", control_port=next(ports))]
    nodes += [Node("client", root / "client", control_port=next(ports))]
    for node in nodes:
        node.directory.mkdir(mode=0o700)
    return nodes


def _write_configs(net: TorNet, keys: list[AuthorityKeys], empty: Path) -> None:
    resolv_conf = net.root / "resolv.conf"
    resolv_conf.write_text(f"nameserver {LOOPBACK}\n")
    authorities = [node for node in net.nodes if node.dir_port is not None]
    dir_authorities = [
        f"DirAuthority {node.name} orport={node.or_port} v3ident={k.v3ident} {LOOPBACK}:{node.dir_port} {k.fingerprint}"
        for node, k in zip(authorities, keys, strict=True)
    ]
    for node, k in zip(authorities, keys, strict=True):
        shutil.copytree(k.keys_dir, node.directory / "keys")
        (node.directory / "keys").chmod(0o700)
    for node in net.nodes:
        options = _common_options(node, dir_authorities, empty)
        if node.or_port is not None:
            options += _relay_options(node, resolv_conf)
        if node.dir_port is not None:
            options += _authority_options(node)
        if node.control_port is not None:
            options += _control_options(node)
        if node.name == "service":
            # Tor reports proof of work being on only at info level, in its rend domain.
            options += [f"Log [rend]info file {node.directory / 'rend.log'}", f"%include {net.extra_torrcs[0]}"]
        if node.name == "client":
            # Extended errors tell "descriptor not found" (0xF0) from other failures.
            options += [f"SocksPort {LOOPBACK}:{net.socks_port} OnionTrafficOnly ExtendedErrors"]
            options += [f"ClientOnionAuthDir {node.directory / 'onion-auth'}"]
        else:
            options += ["SocksPort 0"]  # tor would open 127.0.0.1:9050 otherwise
        node.torrc.write_text("\n".join(options) + "\n")

    service_root = net.node("service").directory / "onion"
    service_root.mkdir(mode=0o700)
    authorized = service_root / "editor" / "authorized_clients"
    authorized.mkdir(mode=0o700, parents=True)
    (service_root / "editor").chmod(0o700)
    public_key = bytes(nacl.public.PrivateKey(net.editor_client_key).public_key)
    (authorized / "test-editor.auth").write_text(f"descriptor:x25519:{_b32(public_key)}\n")
    ports = {8080: net.source_port, 8081: net.editor_port}
    rendered = render_onion_services(ONION_SERVICES_TORRC.read_text(), service_root=service_root, ports=ports)
    net.extra_torrcs[0].write_text(rendered)


def _start(node: Node, tor: str, empty: Path) -> None:
    with node.log.open("ab") as log:
        node.process = subprocess.Popen(
            [tor, "--defaults-torrc", str(empty), "-f", str(node.torrc)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class _Deadline:
    def __init__(self, net: TorNet, seconds: float) -> None:
        self.net = net
        self.start = time.monotonic()
        self.end = self.start + seconds

    def wait(self, what: str, done: Callable[[], bool], interval: float = 0.5) -> None:
        while not done():
            for node in self.net.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise TorNetError(f"tor {node.name} exited while waiting for {what}\n{self.net.tails()}")
            if time.monotonic() > self.end:
                elapsed = time.monotonic() - self.start
                raise TorNetError(f"private Tor network: no {what} after {elapsed:.0f} s\n{self.net.tails()}")
            time.sleep(interval)


def _wait_for_voting_round() -> None:
    # Authorities vote on wall-clock multiples of the interval; starting just
    # after one begins gets the first consensus a round sooner.
    into_round = time.time() % VOTING_INTERVAL
    if into_round > 5:
        time.sleep(VOTING_INTERVAL - into_round + 0.5)


def start_network(root: Path, tor: str, gencert: str, timeout: float = BRING_UP_SECONDS) -> TorNet:
    """Bring the network up until the client can reach both onion services, or raise TorNetError."""
    started = time.monotonic()
    empty = root / "empty"
    empty.touch()
    keys = authority_keys(tor, gencert, empty)
    ports = _distinct_ports(3 * 2 + MIDDLE_RELAYS + 2 + 3)
    nodes = _layout(root, ports)
    net = TorNet(root, nodes, next(ports), next(ports), next(ports), [root / "onion-services.torrc"])
    net.editor_client_key = bytes(nacl.public.PrivateKey.generate())
    _write_configs(net, keys, empty)
    try:
        _bring_up(net, tor, empty, timeout)
    except BaseException:
        net.stop()
        raise
    net.bring_up_seconds = time.monotonic() - started
    return net


def _bring_up(net: TorNet, tor: str, empty: Path, timeout: float) -> None:
    _wait_for_voting_round()
    deadline = _Deadline(net, timeout)
    for node in net.nodes:
        if node.name != "client":
            _start(node, tor, empty)

    # The service writes its hostnames at start-up, offline; the client needs
    # the editor portal's address beside its private key before it starts.
    hostnames = [net.node("service").directory / "onion" / name / "hostname" for name in ("source", "editor")]
    deadline.wait("onion service hostnames", lambda: all(path.exists() for path in hostnames))
    net.source_onion, net.editor_onion = (path.read_text().strip() for path in hostnames)
    client = net.node("client")
    auth_dir = client.directory / "onion-auth"
    auth_dir.mkdir(mode=0o700)
    editor_label = net.editor_onion.removesuffix(".onion")
    private_key = _b32(net.editor_client_key)
    (auth_dir / "editor.auth_private").write_text(f"{editor_label}:descriptor:x25519:{private_key}\n")
    _start(client, tor, empty)

    authorities = [node for node in net.nodes if node.dir_port is not None]
    deadline.wait(
        "published consensus", lambda: any("Published microdesc consensus" in n.log_text() for n in authorities)
    )
    cookies = [node.directory / "control_auth_cookie" for node in (net.node("service"), client)]
    deadline.wait("control cookies", lambda: all(path.exists() for path in cookies))
    for name in ("service", "client"):
        node = net.node(name)
        assert node.control_port is not None
        net.controls[name] = Control(node.control_port, node.directory / "control_auth_cookie")
    net.controls["service"].command("SETEVENTS HS_DESC")
    for name in ("service", "client"):
        net.controls[name].command("SETCONF DisableNetwork=0")

    deadline.wait("client bootstrap", lambda: _bootstrapped(net.controls["client"]), interval=1)
    labels = {net.source_onion.removesuffix(".onion"), editor_label}
    deadline.wait("descriptor uploads", lambda: _uploaded(net.controls["service"]) >= labels, interval=0)


def _bootstrapped(control: Control) -> bool:
    return any("PROGRESS=100" in line for line in control.command("GETINFO status/bootstrap-phase"))


def _uploaded(control: Control) -> set[str]:
    control.poll_events(1.0)
    return {event.split()[3] for event in control.events if event.startswith("650 HS_DESC UPLOADED ")}
