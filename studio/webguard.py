"""An ASGI middleware in front of Gradio's routes: what a LAN studio must not answer.

- POST /login is throttled per client address: after MAX_FAILURES wrong passwords
  within WINDOW_S, that client gets 429 (even for the right password) for LOCK_S.
  Behind a reverse proxy listed in trusted_proxies, the client is the address that
  proxy names in X-Forwarded-For; anyone else's X-Forwarded-For is ignored.
- /monitoring and everything under it (Gradio's analytics) answers 404, except
  /monitoring/summary, which the "Use via API" page reads: it gets an empty summary.
- Every route Gradio serves files from (found in its router at the first request:
  a path parameter handed to Gradio's file_fetch, e.g. /file=..., /gradio_api/file=...,
  /gradio_api/file/...) serves only Gradio's upload and result cache: results and
  uploads are copied there under unguessable names, while the library database,
  models, cast references, users file and takes are not.

It knows nothing about the studio: launch() passes it to Gradio's FastAPI app.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import NamedTuple

from starlette.convertors import PathConvertor
from starlette.routing import compile_path

MAX_FAILURES = 5       # wrong passwords per client within WINDOW_S before a lock
WINDOW_S = 300.0
LOCK_S = 60.0          # doubles with every further lock of the same client, up to MAX_LOCK_S
MAX_LOCK_S = 3600.0
LOGIN_ROUTES = ("/login", "/login/")
EMPTY_SUMMARY = {"functions": {}}  # the shape of Gradio's /monitoring/summary with no events recorded


class LoginThrottle:
    """Failed-login bookkeeping per client; a clock can be passed for tests."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S, lock_s: float = LOCK_S,
                 clock=time.monotonic) -> None:
        self.max_failures, self.window_s, self.lock_s, self.clock = max_failures, window_s, lock_s, clock
        self.failures: dict[str, deque] = defaultdict(deque)
        self.locked_until: dict[str, float] = {}
        self.locks: dict[str, int] = defaultdict(int)

    def wait_s(self, client: str) -> float:
        """Seconds this client must wait before trying again (0 = may try now)."""
        return max(0.0, self.locked_until.get(client, 0.0) - self.clock())

    def failed(self, client: str) -> None:
        now = self.clock()
        recent = self.failures[client]
        recent.append(now)
        while recent and recent[0] < now - self.window_s:
            recent.popleft()
        if len(recent) >= self.max_failures:
            self.locks[client] += 1
            self.locked_until[client] = now + min(self.lock_s * 2 ** (self.locks[client] - 1), MAX_LOCK_S)
            recent.clear()

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)
        self.locks.pop(client, None)


def _inside(path: str, folders: list[Path]) -> bool:
    try:
        resolved = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return False
    return any(resolved == f or f in resolved.parents for f in folders)


def _calls_file_fetch(fn, depth: int = 3) -> bool:
    """Whether `fn`, or a function it wraps or closes over, calls Gradio's file_fetch."""
    code = getattr(fn, "__code__", None)
    if code is None or depth == 0:
        return False
    if "file_fetch" in code.co_names:
        return True
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if inner is not fn and _calls_file_fetch(inner, depth - 1):
            return True
    return _calls_file_fetch(getattr(fn, "__wrapped__", None), depth - 1)


class PathRoute(NamedTuple):
    path: str       # as Gradio declares it, prefix included, e.g. /gradio_api/file={path_or_url:path}
    regex: re.Pattern
    param: str      # the path parameter
    endpoint: object


def path_routes(app) -> list[PathRoute]:
    """Every route of `app` (FastAPI routers included under their prefix) with a {name:path} parameter."""
    found: dict[str, PathRoute] = {}

    def walk(routes, prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router(prefix=...)
            if included is not None:
                walk(included.routes, prefix + (getattr(route.include_context, "prefix", "") or ""))
                continue
            path = getattr(route, "path", None)
            if path is None:
                continue
            regex, _, convertors = compile_path(prefix + path)
            names = [n for n, c in convertors.items() if isinstance(c, PathConvertor)]
            if names:
                found.setdefault(prefix + path, PathRoute(prefix + path, regex, names[0], route.endpoint))

    walk(getattr(app, "routes", []), "")
    return list(found.values())


def file_routes(app) -> list[PathRoute]:
    """The path routes whose file is named by the request: those that hand it to Gradio's file_fetch."""
    return [r for r in path_routes(app) if _calls_file_fetch(r.endpoint)]


def client_address(scope, trusted: list) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest untrusted address in
    X-Forwarded-For (read right to left, as each proxy appends the address it received from)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _in_networks(peer, trusted):
        return peer
    header = b",".join(v for k, v in scope.get("headers", []) if k == b"x-forwarded-for").decode("latin-1")
    hops = [h.strip() for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _in_networks(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in networks)


class WebGuard:
    """ASGI middleware: login throttle, no monitoring, file routes confined to Gradio's cache."""

    def __init__(self, app, served_folders: list[str], throttle: LoginThrottle | None = None,
                 trusted_proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.served = [Path(os.path.realpath(f)) for f in served_folders]
        self.throttle = throttle or LoginThrottle()
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]
        self.files: list[PathRoute] | None = None  # Gradio's file routes, read at the first request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path == "/monitoring/summary":
            return await _reply(send, 200, body=EMPTY_SUMMARY)
        if path == "/monitoring" or path.startswith("/monitoring/"):
            return await _reply(send, 404, "Not found.")
        if self.files is None and scope.get("app") is not None:
            found = file_routes(scope["app"])
            if not found:  # fail closed (every request): a Gradio or FastAPI upgrade hid them from file_routes
                raise RuntimeError("no file routes found in Gradio's router: the web guard cannot confine them")
            self.files = found
        for route in self.files or ():
            match = route.regex.match(path)
            if match:
                target = match.group(route.param)
                if "://" not in target and not _inside(target, self.served):
                    return await _reply(send, 403, "File not allowed.")
        if path in LOGIN_ROUTES and scope.get("method") == "POST":
            return await self._login(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _login(self, scope, receive, send):
        client = client_address(scope, self.trusted)
        wait = self.throttle.wait_s(client)
        if wait > 0:
            return await _reply(send, 429, f"Too many failed logins; try again in {int(wait) + 1} s.",
                                {"retry-after": str(int(wait) + 1)})
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status.get("code") == 200:
            self.throttle.succeeded(client)
        elif status.get("code") in (400, 401):
            self.throttle.failed(client)


async def _reply(send, code: int, detail: str = "", headers: dict[str, str] | None = None,
                 body: dict | None = None) -> None:
    body = json.dumps({"detail": detail} if body is None else body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": code, "headers": raw})
    await send({"type": "http.response.body", "body": body})
