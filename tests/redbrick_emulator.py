"""A RedBrick API emulator for the tests: a real HTTP server on 127.0.0.1 that speaks the SDK's transport and
executes GraphQL with a real engine (graphql-core) against ``redbrick_schema.graphql``.

A request arrives as ``base64(gzip(json))`` with an ``ApiKey`` header. Its document is parsed and validated
against the schema first: a syntax error, a field, argument or type the schema does not have, or variables that
do not fit their declared types are answered with HTTP 400 and ``{"errors": [{message, locations, extensions}]}``,
as a GraphQL server answers them; nothing is executed. A valid document is executed against :attr:`root` (root
field name -> ``resolver(info, **args)``; nested dicts may hold callables for fields that take arguments).

Files are served under ``/files/<storage path>?X-Amz-Signature=...``, as presigned URLs; a request without the
signature is refused with 403. Faults are queued per operation name or file path prefix and used up one per
request: ``"500"``, ``"429"`` (with ``Retry-After``), ``"slow"`` (answers after ``slow_seconds``), ``"drop"``
(closes the connection half way through a body) and ``"truncate"`` (a body cut short, with a matching length).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import GraphQLError, build_schema, execute_sync, parse, validate
from graphql.language import OperationDefinitionNode

SCHEMA_PATH = Path(__file__).with_name("redbrick_schema.graphql")
Resolver = Callable[..., Any]


def _checked_scalar(check: Callable[[str], Any], what: str) -> tuple[Callable[[Any], Any], Callable[..., Any]]:
    def parse_value(value: Any) -> Any:
        if not isinstance(value, str):
            raise GraphQLError(f"{what} cannot represent a non-string value: {value!r}")
        try:
            check(value)
        except ValueError:
            raise GraphQLError(f"{what} cannot represent value: {value!r}") from None
        return value

    def parse_literal(node: Any, _variables: Any = None) -> Any:
        return parse_value(getattr(node, "value", None))

    return parse_value, parse_literal


def load_schema(path: Path = SCHEMA_PATH) -> Any:
    """The schema, with UUID and DateTime inputs checked as RedBrick's server checks them."""
    schema = build_schema(path.read_text(encoding="utf-8"))
    for name, check in (("UUID", uuid.UUID), ("DateTime", datetime.datetime.fromisoformat)):
        scalar = schema.type_map[name]
        parse_value, parse_literal = _checked_scalar(check, name)
        scalar.parse_value, scalar.parse_literal = parse_value, parse_literal  # graphql-core 3.2
        if hasattr(scalar, "coerce_input_value"):  # graphql-core 3.3
            scalar.coerce_input_value, scalar.coerce_input_literal = parse_value, parse_literal
    return schema


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout, a dropped download) is part of the tests, not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def operation_name(document: Any) -> str:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.name.value if definition.name else ""
    return ""


class Emulator:
    """Start with ``with Emulator(key) as emu:``. ``emu.url`` is the GraphQL endpoint, ``emu.base_url`` the
    form RedBrick's CLI stores in its credentials (``http://localhost:PORT``)."""

    def __init__(self, api_key: str, slow_seconds: float = 1.0, latency: float = 0.0,
                 tls: tuple[str, str] | None = None) -> None:
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.latency = latency  # added to every request, as a network round trip
        self.schema = load_schema()
        self.root: dict[str, Resolver] = {}
        self.files: dict[str, bytes] = {}
        self.encodings: dict[str, str] = {}  # storage path -> Content-Encoding it is served with
        self.faults: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, operation name or file path)
        self.documents: list[tuple[str, dict[str, Any]]] = []  # every GraphQL document and its variables
        self.rejected: list[tuple[str, list[str]]] = []  # (operation, messages) of refused documents
        self.signature = secrets.token_hex(16)  # the presigned URLs' secret: must never be printed
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self.tls = tls  # (certificate, key) files: serve HTTPS
        self._server = self._bind(0)
        self._thread: threading.Thread | None = None

    def _bind(self, port: int) -> _Server:
        server = _Server(("127.0.0.1", port), self._handler_class())
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        return server

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/api/graphql/"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://localhost:{self.port}"

    def file_url(self, name: str) -> str:
        query = urllib.parse.urlencode({"X-Amz-Expires": "3600", "X-Amz-Signature": self.signature})
        return f"{self.base}/files/{urllib.parse.quote(name)}?{query}"

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

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop answering: the port is closed and open connections are cut; :meth:`restart` serves again on
        the same port."""
        if self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            with self._lock:
                for connection in list(self._connections):
                    with contextlib.suppress(OSError):
                        connection.shutdown(2)
            self._thread = None

    def restart(self) -> None:
        self._server = self._bind(self.port)
        self.start()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def run(self, request: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        """(HTTP status, reply, operation name) for one GraphQL request, as RedBrick's server answers it."""
        query = request.get("query")
        variables = request.get("variables") or {}
        if not isinstance(query, str):
            return 400, {"errors": [{"message": "Must provide query string."}]}, ""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return 400, {"errors": [_error(exc, "GRAPHQL_PARSE_FAILED")]}, ""
        name = operation_name(document)
        self.documents.append((query, variables))
        errors = validate(self.schema, document)
        if errors:
            self.rejected.append((name, [e.message for e in errors]))
            return 400, {"errors": [_error(e, "GRAPHQL_VALIDATION_FAILED") for e in errors]}, name
        result = execute_sync(self.schema, document, root_value=self.root, variable_values=variables,
                              operation_name=request.get("operationName"))
        if result.errors and result.data is None:  # variables that do not fit their types
            self.rejected.append((name, [e.message for e in result.errors]))
            return 400, {"errors": [_error(e, "BAD_USER_INPUT") for e in result.errors]}, name
        reply: dict[str, Any] = {"data": result.data}
        if result.errors:
            reply["errors"] = [_error(e, "INTERNAL_SERVER_ERROR") for e in result.errors]
        return 200, reply, name

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with emulator._lock:
                    emulator._connections.add(self.connection)

            def finish(self) -> None:
                with emulator._lock:
                    emulator._connections.discard(self.connection)
                super().finish()

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, kind: str | None, body: bytes, headers: dict[str, str]) -> bool:
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
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif kind == "truncate":
                    self._reply(200, body[: len(body) // 2], headers)
                else:
                    return False
                return True

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if emulator.latency:
                    time.sleep(emulator.latency)
                if not self.path.rstrip("/").endswith("/graphql"):
                    self._reply(404, b"not found")
                    return
                if self.headers.get("ApiKey") != emulator.api_key:
                    emulator.requests.append(("POST", "unauthorized"))
                    self._reply(401, b'{"errors": [{"message": "Unauthorized"}]}')
                    return
                try:
                    text = gzip.decompress(base64.b64decode(raw)) if self.headers.get("Content-Encoding-RB") \
                        else raw
                    request = json.loads(text)
                except (ValueError, OSError):
                    self._reply(400, b'{"errors": [{"message": "Malformed request body"}]}')
                    return
                status, reply, name = emulator.run(request)
                emulator.requests.append(("POST", name))
                body = json.dumps(reply).encode()
                headers = {"Content-Type": "application/json"}
                if self._fault(emulator._take_fault(name), body, headers):
                    return
                self._reply(status, body, headers)

            def do_GET(self) -> None:
                if emulator.latency:
                    time.sleep(emulator.latency)
                path, _, query = self.path.partition("?")
                name = urllib.parse.unquote(path.removeprefix("/files/"))
                emulator.requests.append(("GET", name))
                if urllib.parse.parse_qs(query).get("X-Amz-Signature") != [emulator.signature]:
                    self._reply(403, b"<Error><Code>AccessDenied</Code></Error>")
                    return
                body = emulator.files.get(name)
                if body is None:
                    self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                    return
                headers = {"Content-Type": "application/octet-stream"}
                if name in emulator.encodings:
                    headers["Content-Encoding"] = emulator.encodings[name]
                if self._fault(emulator._take_fault(name), body, headers):
                    return
                self._reply(200, body, headers)

        return Handler


def _error(error: GraphQLError, code: str) -> dict[str, Any]:
    formatted = dict(error.formatted)
    formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
    return formatted
