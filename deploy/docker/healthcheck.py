"""The container's HEALTHCHECK: both interfaces answer GET /healthz with "ok".

No curl in the image, and http.client ignores proxy variables.
Usage: python healthcheck.py [SOURCE_PORT EDITOR_PORT]
"""

from __future__ import annotations

import http.client
import sys


def healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return response.status == 200 and response.read(16) == b"ok"
    except OSError:
        return False
    finally:
        connection.close()


if __name__ == "__main__":
    ports = [int(p) for p in sys.argv[1:]] or [8080, 8081]
    sys.exit(0 if all(healthy(p) for p in ports) else 1)
