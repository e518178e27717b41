"""A real RFC 3161 time-stamping authority for the tests: OpenSSL's `openssl ts -reply` behind HTTP.

Made per test with a throw-away CA; it keeps every request it received (so
tests can check that it saw only anchor imprints), and can be taken down to
test an outage.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = {dir}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ tsa_ext ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[ ca_ext ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_authority_files(directory: Path, name: str = "Buzón test TSA") -> Path:
    """A CA and a time-stamping certificate signed by it; returns the CA certificate's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tsa.cnf").write_text(_CONFIG.format(dir=directory), encoding="utf-8")
    (directory / "serial").write_text("01\n", encoding="ascii")
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes".split()
    root = "req -x509 -keyout ca.key -out ca.crt -days 3650 -extensions ca_ext -config tsa.cnf".split()
    _openssl(*root, *ec, "-subj", f"/CN={name} root", cwd=directory)
    _openssl(*"req -new -keyout tsa.key -out tsa.csr".split(), *ec, "-subj", f"/CN={name}", cwd=directory)
    signer = "x509 -req -in tsa.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tsa.crt -days 3650"
    _openssl(*signer.split(), *"-extfile tsa.cnf -extensions tsa_ext".split(), cwd=directory)
    return directory / "ca.crt"


@dataclass
class Authority:
    """A running authority: its URL, its CA certificate, and what it was asked."""

    url: str
    ca_file: Path
    requests: list[bytes] = field(default_factory=list)
    down: bool = False


class _Handler(BaseHTTPRequestHandler):
    authority: Authority
    directory: Path
    lock: threading.Lock

    def do_POST(self) -> None:
        query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.authority.down:
            self.send_error(503)
            return
        self.authority.requests.append(query)
        with self.lock, tempfile.TemporaryDirectory(dir=self.directory) as work:
            query_file, reply_file = Path(work) / "q.tsq", Path(work) / "r.tsr"
            query_file.write_bytes(query)
            done = subprocess.run(
                [
                    "openssl",
                    "ts",
                    "-reply",
                    "-config",
                    "tsa.cnf",
                    "-queryfile",
                    str(query_file),
                    "-signer",
                    "tsa.crt",
                    "-inkey",
                    "tsa.key",
                    "-out",
                    str(reply_file),
                ],
                cwd=self.directory,
                capture_output=True,
                timeout=60,
            )
            reply = reply_file.read_bytes() if done.returncode == 0 else b""
        if not reply:
            self.send_error(400)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


class RunningAuthority:
    """An authority serving on a free port of 127.0.0.1 until ``close``."""

    def __init__(self, directory: Path) -> None:
        ca_file = make_authority_files(directory)
        self.authority = Authority(url="", ca_file=ca_file)
        handler: type[_Handler] = type(
            "Handler", (_Handler,), {"directory": directory, "lock": threading.Lock(), "authority": self.authority}
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.authority.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
