"""A minimal Tor control-port client, for the private test network (tests/support/tornet.py)."""

from __future__ import annotations

import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"


class TorNetError(Exception):
    pass


class Control:
    """Commands over a control port (control-spec), with asynchronous events kept aside."""

    def __init__(self, port: int, cookie_file: Path) -> None:
        self._sock = socket.create_connection((LOOPBACK, port), timeout=30)
        self._buffer = b""
        self.events: list[str] = []
        self.command(f"AUTHENTICATE {cookie_file.read_bytes().hex()}")

    def _read_line(self) -> str:
        while b"\r\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise TorNetError("control connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def command(self, line: str) -> list[str]:
        self._sock.settimeout(30)
        self._sock.sendall(line.encode() + b"\r\n")
        reply = []
        while True:
            text = self._read_line()
            if text.startswith("650"):
                self.events.append(text)
                continue
            reply.append(text)
            if text[3:4] == "+":
                while (data := self._read_line()) != ".":
                    reply.append(data)
            elif text[3:4] == " ":
                if not text.startswith("2"):
                    raise TorNetError(f"{line.split()[0]} failed: {text}")
                return reply

    def poll_events(self, seconds: float) -> None:
        """Collect the asynchronous events that arrive within ``seconds``."""
        self._sock.settimeout(seconds)
        try:
            while True:
                self.events.append(self._read_line())
        except TimeoutError:
            pass

    def close(self) -> None:
        self._sock.close()
