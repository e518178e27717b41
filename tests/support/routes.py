"""Every route of an app, through FastAPI's included routers, for tests that walk them all."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount


def declared_routes(app: FastAPI) -> Iterator[tuple[str, BaseRoute]]:
    """(full path template, route) of every API route and mount, in declaration order."""
    yield from _routes_of(app.routes, "")


def post_paths(app: FastAPI) -> set[str]:
    return {
        path for path, route in declared_routes(app) if isinstance(route, APIRoute) and "POST" in (route.methods or ())
    }


def _routes_of(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, BaseRoute]]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI ≥ 0.16x keeps included routers whole
        if isinstance(route, APIRoute | Mount):
            yield prefix + route.path, route
        elif included is not None:
            yield from _routes_of(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        else:
            yield prefix + getattr(route, "path", "?"), route
