"""An httpx transport through a Tor client's SOCKS port.

socksio is not a dependency, so this speaks SOCKS5 CONNECT itself (RFC 1928),
always sending the host as a name (ATYP 0x03): the .onion address must be
resolved by Tor, never by the test machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpcore
import httpx

# Tor's extended SOCKS5 replies (with the SocksPort flag ExtendedErrors).
ONION_DESCRIPTOR_NOT_FOUND = 0xF0
ONION_MISSING_CLIENT_AUTH = 0xF4
ONION_WRONG_CLIENT_AUTH = 0xF5


class SocksError(Exception):
    def __init__(self, reply: int) -> None:
        super().__init__(f"SOCKS5 CONNECT refused with reply 0x{reply:02X}")
        self.reply = reply


def _read_exact(stream: httpcore.NetworkStream, size: int, timeout: float | None) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data), timeout)
        if not chunk:
            raise SocksError(0x01)
        data += chunk
    return data


def socks5_connect(stream: httpcore.NetworkStream, host: str, port: int, timeout: float | None) -> None:
    """Ask the proxy at the other end of ``stream`` to connect it to ``host:port``."""
    name = host.encode("ascii")
    stream.write(b"\x05\x01\x00", timeout)  # version 5, one method: no authentication
    if _read_exact(stream, 2, timeout) != b"\x05\x00":
        raise SocksError(0xFF)
    stream.write(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"), timeout)
    version, reply, _, address_type = _read_exact(stream, 4, timeout)
    if version != 5 or reply != 0:
        raise SocksError(reply)
    # Skip the bound address (IPv4, IPv6 or a length-prefixed name) and port.
    sizes = {0x01: 4, 0x04: 16}
    size = sizes[address_type] if address_type in sizes else _read_exact(stream, 1, timeout)[0]
    _read_exact(stream, size + 2, timeout)


class _SocksBackend(httpcore.NetworkBackend):
    def __init__(self, socks_port: int) -> None:
        self._socks_port = socks_port
        self._tcp = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._tcp.connect_tcp("127.0.0.1", self._socks_port, timeout)
        try:
            socks5_connect(stream, host, port, timeout)
        except BaseException:
            stream.close()
            raise
        return stream

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class TorTransport(httpx.BaseTransport):
    """Plain HTTP through Tor; responses are read whole (fine for tests)."""

    def __init__(self, socks_port: int) -> None:
        self._pool = httpcore.ConnectionPool(network_backend=_SocksBackend(socks_port))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        )
        core_request = httpcore.Request(
            method=request.method,
            url=url,
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        core_response = self._pool.handle_request(core_request)
        try:
            content = core_response.read()
        finally:
            core_response.close()
        return httpx.Response(core_response.status, headers=core_response.headers, content=content)

    def close(self) -> None:
        self._pool.close()
