"""A small threaded HTTP server on loopback, with routing, auth, fault injection and inspectable state.

Each vendor emulator subclasses :class:`Emulator`, declares routes with :func:`route`, and keeps the
vendor-side state (audiences, contacts, received events) in plain attributes guarded by ``self.lock``
so tests can compare it with what the warehouse says should be there.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class FaultConfig:
    """Faults to inject. Counters are per emulator instance; ``every`` of 0 means never."""

    throttle_every: int = 0  # every Nth request answers with the vendor's throttle signal
    retry_after: float = 0.05  # seconds the throttle signal asks to wait
    error_5xx_every: int = 0  # every Nth request answers 500/503
    timeout_every: int = 0  # every Nth request stalls for timeout_seconds before answering
    timeout_seconds: float = 2.0
    auth_failure: bool = False  # every request fails authentication
    reject_values: tuple[str, ...] = ()  # records containing any of these values are rejected
    rate_limit_per_second: float | None = None  # token bucket; excess requests get the throttle signal


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


Handler = Callable[["Emulator", Request], Response]
# Called after each answer with the request, the response and the seconds it took (`cdp emulate` logs).
Observer = Callable[[Request, Response, float], None]


class _Server(ThreadingHTTPServer):
    """The loopback server every emulator runs on."""

    daemon_threads = True
    # The default listen backlog of 5 holds extra connections back in the kernel (the client retries a
    # second later), which hides the concurrency a destination really uses and slows parallel workers.
    request_queue_size = 64


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Declare a handler for ``method`` and a path pattern with ``{name}`` placeholders."""

    def decorate(func: Handler) -> Handler:
        func._route = (method.upper(), pattern)  # type: ignore[attr-defined]
        return func

    return decorate


class Emulator:
    """Base emulator. Subclasses implement ``authenticate`` and ``throttle_response`` and routes."""

    name: ClassVar[str] = "emulator"

    def __init__(self, faults: FaultConfig | None = None, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.faults = faults or FaultConfig()
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.request_count = 0
        self._bucket_tokens = 0.0
        self._bucket_at = time.monotonic()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        for attr in dir(type(self)):
            func = getattr(type(self), attr)
            spec = getattr(func, "_route", None)
            if spec:
                method, pattern = spec
                regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
                self._routes.append((method, regex, func))
        self.observers: list[Observer] = []
        self._server = _Server((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        # A short poll interval makes stop() return in milliseconds, not half a second per emulator.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- vendor hooks ----------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Return an error response when the request's credentials are wrong, else None."""
        return None

    def throttle_response(self) -> Response:
        """The vendor's own throttle signal (429 + Retry-After by default)."""
        return Response(429, {"error": "rate limited"}, {"Retry-After": str(self.faults.retry_after)})

    def server_error_response(self) -> Response:
        return Response(503, {"error": "service unavailable"})

    # -- dispatch --------------------------------------------------------------------------------

    def _take_token(self) -> bool:
        rate = self.faults.rate_limit_per_second
        if not rate:
            return True
        now = time.monotonic()
        burst = max(1.0, rate)
        self._bucket_tokens = min(burst, self._bucket_tokens + (now - self._bucket_at) * rate)
        self._bucket_at = now
        if self._bucket_tokens >= 1.0:
            self._bucket_tokens -= 1.0
            return True
        return False

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.request_count += 1
            n = self.request_count
            self.requests.append(request)
            throttled = not self._take_token()
        f = self.faults
        if f.auth_failure:
            return self.authenticate_failure()
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        if throttled or (f.throttle_every and n % f.throttle_every == 0):
            return self.throttle_response()
        if f.error_5xx_every and n % f.error_5xx_every == 0:
            return self.server_error_response()
        if f.timeout_every and n % f.timeout_every == 0:
            time.sleep(f.timeout_seconds)
        for method, regex, func in self._routes:
            if method != request.method:
                continue
            match = regex.match(request.path)
            if match:
                request.params = match.groupdict()
                with self.lock:
                    return func(self, request)
        return Response(404, {"error": f"no route for {request.method} {request.path}"})

    def authenticate_failure(self) -> Response:
        return Response(401, {"error": "invalid credentials"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: with Nagle on, each response waits for a delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                started = time.monotonic()
                try:
                    response = emulator.dispatch(request)
                except Exception as exc:  # an emulator bug must be visible, not a hang
                    response = Response(500, {"error": f"emulator error: {type(exc).__name__}: {exc}"})
                payload = response.raw
                if payload is None:
                    payload = b"" if response.body is None else json.dumps(response.body).encode()
                self.send_response(response.status)
                headers = {"Content-Type": "application/json", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                elapsed = time.monotonic() - started
                for observe in list(emulator.observers):  # after the answer: a slow log never delays it
                    observe(request, response, elapsed)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return _Handler
