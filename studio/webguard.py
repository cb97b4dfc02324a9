"""An ASGI middleware in front of Gradio's routes: what a LAN studio must not answer.

- POST /login is throttled per client address: after MAX_FAILURES wrong passwords
  within WINDOW_S, that client gets 429 (even for the right password) for LOCK_S.
- /monitoring and everything under it (Gradio's analytics, /monitoring/summary
  included) answers 404.
- The file routes (/file=..., /gradio_api/file=...) serve only Gradio's upload and
  result cache: results and uploads are copied there under unguessable names, while
  the library database, models, cast references, users file and takes are not.

It knows nothing about the studio: launch() passes it to Gradio's FastAPI app.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import unquote

MAX_FAILURES = 5       # wrong passwords per client within WINDOW_S before a lock
WINDOW_S = 300.0
LOCK_S = 60.0          # doubles with every further lock of the same client, up to MAX_LOCK_S
MAX_LOCK_S = 3600.0
FILE_ROUTES = ("/file=", "/gradio_api/file=")
LOGIN_ROUTES = ("/login", "/login/")


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


class WebGuard:
    """ASGI middleware: login throttle, no monitoring, file routes confined to Gradio's cache."""

    def __init__(self, app, served_folders: list[str], throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.served = [Path(os.path.realpath(f)) for f in served_folders]
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path == "/monitoring" or path.startswith("/monitoring/"):
            return await _reply(send, 404, "Not found.")
        for prefix in FILE_ROUTES:
            if path.startswith(prefix):
                target = unquote(path[len(prefix):])
                if "://" not in target and not _inside(target, self.served):
                    return await _reply(send, 403, "File not allowed.")
        if path in LOGIN_ROUTES and scope.get("method") == "POST":
            return await self._login(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _login(self, scope, receive, send):
        client = (scope.get("client") or ("unknown", 0))[0]
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


async def _reply(send, code: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": code, "headers": raw})
    await send({"type": "http.response.body", "body": body})
