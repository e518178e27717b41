"""How many bytes and requests each source page costs a source over Tor.

Fetches each page of the source interface from a real server, then each
same-origin subresource it names (stylesheets, images), and totals the bytes
of the bodies as received (compressed, if the server compressed them;
headers not counted).

    .venv/bin/python -m bench.pages

A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import re
from urllib.parse import urljoin, urlsplit

import httpx

from bench.ingest_memory import submit_url
from bench.report import Table, client, live_bench
from tests.support import post_multipart

_SUBRESOURCE = re.compile(r'<(?:link[^>]+href|img[^>]+src|script[^>]+src)="([^"]+)"')


def _cost(http: httpx.Client, base: str, page: httpx.Response) -> tuple[int, int, list[str]]:
    """Requests, bytes and subresource paths of a page, counting its same-origin subresources."""
    requests, size, names = 1, page.num_bytes_downloaded, []
    for ref in dict.fromkeys(_SUBRESOURCE.findall(page.text)):
        url = urljoin(str(page.url), ref)
        if urlsplit(url).netloc != urlsplit(base).netloc:
            continue
        sub = http.get(url)
        requests += 1
        size += sub.num_bytes_downloaded
        names.append(urlsplit(url).path)
    return requests, size, names


def measure() -> Table:
    rows = []
    with live_bench("pages") as bench, client() as http:
        base = bench.server.source_url
        pages = {path: http.get(f"{base}{path}") for path in ("/", "/submit", "/login", "/tor")}
        pages["codename page (after a first tip)"] = post_multipart(
            http, submit_url(http, base), {"message": "a first tip"}
        )
        for name, page in pages.items():
            requests, size, names = _cost(http, base, page)
            rows.append(
                [name, str(requests), f"{size / 1000:.1f}", f"{page.num_bytes_downloaded / 1000:.1f}", ", ".join(names)]
            )
    return Table(
        "Source pages: what each costs a source",
        "report: requests and bytes (page + same-origin subresources, fetched uncached)",
        ["page", "requests", "total kB", "HTML kB", "subresources"],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(measure().text())


if __name__ == "__main__":
    main()
