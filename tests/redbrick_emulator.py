"""A RedBrick API emulator for the tests: a real HTTP server on 127.0.0.1 speaking the SDK's transport.

GraphQL requests arrive as ``base64(gzip(json))`` with an ``ApiKey`` header and are answered by handlers keyed
by operation name; files are served under ``/files/``. Faults are queued per path prefix and used up one per
request: ``"500"``, ``"429"`` (with ``Retry-After``), ``"slow"`` (answers after a delay), ``"drop"`` (closes the
connection half way through a body) and ``"truncate"`` (a body cut short, with a matching length).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[dict[str, Any]], Any]


class Emulator:
    """Start with ``with Emulator(key) as emu:``; ``emu.url`` is the GraphQL endpoint."""

    def __init__(self, api_key: str, slow_seconds: float = 1.0, latency: float = 0.0) -> None:
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.latency = latency  # added to every request, as a network round trip
        self.handlers: dict[str, Handler] = {}
        self.files: dict[str, bytes] = {}
        self.faults: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path or operation)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/api/graphql/"

    def file_url(self, name: str) -> str:
        return f"{self.base}/files/{urllib.parse.quote(name)}"

    def fail(self, prefix: str, kind: str, times: int = 1) -> None:
        """Make the next ``times`` requests whose path (or operation) starts with ``prefix`` fail as ``kind``."""
        with self._lock:
            self.faults += [(prefix, kind)] * times

    def _take_fault(self, target: str) -> str | None:
        with self._lock:
            for i, (prefix, kind) in enumerate(self.faults):
                if target.startswith(prefix):
                    del self.faults[i]
                    return kind
        return None

    def __enter__(self) -> Emulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, kind: str | None, body: bytes) -> bool:
                """Act out a fault; True when the request is answered by it."""
                if kind == "500":
                    self._reply(500, b"internal error")
                elif kind == "429":
                    self._reply(429, b"slow down", {"Retry-After": "2"})
                elif kind == "slow":
                    time.sleep(emulator.slow_seconds)
                    return False
                elif kind == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif kind == "truncate":
                    self._reply(200, body[: len(body) // 2])
                else:
                    return False
                return True

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("ApiKey") != emulator.api_key:
                    emulator.requests.append(("POST", "unauthorized"))
                    self._reply(401, b'{"errors": [{"message": "Unauthorized"}]}')
                    return
                request = json.loads(gzip.decompress(base64.b64decode(raw)))
                operation = request.get("operationName", "")
                emulator.requests.append(("POST", operation))
                if self._fault(emulator._take_fault(operation), b""):
                    return
                handler = emulator.handlers.get(operation)
                if handler is None:
                    self._reply(400, json.dumps({"errors": [{"message": f"unknown operation {operation}"}]}).encode())
                    return
                self._reply(200, json.dumps({"data": handler(request.get("variables") or {})}).encode(),
                            {"Content-Type": "application/json"})

            def do_GET(self) -> None:
                name = urllib.parse.unquote(self.path.removeprefix("/files/").split("?")[0])
                emulator.requests.append(("GET", name))
                body = emulator.files.get(name)
                if body is None:
                    self._reply(404, b"not found")
                    return
                if self._fault(emulator._take_fault(name), body):
                    return
                self._reply(200, body)

        return Handler
