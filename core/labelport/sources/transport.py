"""HTTP to the RedBrick API, as its SDK speaks it, with the retries the SDK lacks.

GraphQL requests are POSTed with a body of ``base64(gzip(json))`` and the API key in an ``ApiKey`` header.
HTTP 429 (honouring ``Retry-After``), 5xx and dropped connections are retried with exponential backoff and
jitter, up to :attr:`RetryPolicy.attempts`; a request that stalls past the timeout is retried from its own,
separate budget (:attr:`RetryPolicy.stalls`), so a slow spell does not use up the retries meant for a busy
server. Every request also stops at :attr:`RetryPolicy.deadline`. Other 4xx are not retried: the server's own
GraphQL error message is reported. A refused key (401/403) is one clear error that never contains the key.

Downloads stream the bytes as sent to a temporary file next to the target, are checked (length; gzip integrity
where the file is gzip) and then renamed, so a cut connection never leaves a partial file. Presigned URLs carry
signatures in their query strings: :func:`redact` strips them from anything that may be printed or logged.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from ..errors import SourceError

__all__ = ["RetryPolicy", "Transport", "gzip_intact", "redact"]

_RETRY_STATUS = {429, 500, 502, 503, 504}
_URL_QUERY = re.compile(r"(https?://[^\s?'\"<>]+)\?[^\s'\"<>]*")
_SIGNED_PATH = re.compile(r"(/[^\s?'\"<>]*)\?[^\s'\"<>]*(Signature|Credential|Security-Token|sig=|token=)[^\s'\"<>]*",
                          re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the query string of every URL (where presigned URLs keep their signatures) removed."""
    return _SIGNED_PATH.sub(r"\1?…", _URL_QUERY.sub(r"\1?…", text))


class _RedactFilter(logging.Filter):
    """Keeps urllib3's debug lines ("GET /path?X-Amz-Signature=..."), minus the signatures."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactFilter())


@dataclass(frozen=True)
class RetryPolicy:
    """Retries: ``attempts`` tries for HTTP 429/5xx and dropped connections, ``stalls`` more for requests that
    time out after ``timeout`` seconds of silence, every request given up after ``deadline`` seconds. The n-th
    retry waits ``base * 2**n`` seconds (at most ``cap``) plus up to 50 % jitter, or what ``Retry-After`` asks."""

    attempts: int = 6
    stalls: int = 3
    base: float = 0.5
    cap: float = 30.0
    timeout: float = 30.0
    deadline: float = 600.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(self.cap, max(0.0, float(retry_after)))
            except ValueError:
                pass
        wait = min(self.cap, self.base * 2**attempt)
        return float(wait + random.uniform(0, wait / 2))


class _Budget:
    """The retries one request still has (see :class:`RetryPolicy`)."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy, self.what = policy, what
        self.failures = self.stalls = 0
        self.started = time.monotonic()
        self.last = ""

    def spend(self, reason: str, stalled: bool = False) -> int:
        """Count a failed try; returns the number of the retry to wait for, or raises when none is left."""
        self.last = reason
        if stalled:
            self.stalls += 1
        else:
            self.failures += 1
        if self.failures >= self.policy.attempts or self.stalls > self.policy.stalls:
            tries = self.failures + self.stalls
            raise SourceError(f"{self.what} failed after {tries} attempts ({reason})")
        if time.monotonic() - self.started > self.policy.deadline:
            raise SourceError(f"{self.what} gave up after {self.policy.deadline:.0f} s ({reason})")
        return self.failures + self.stalls - 1


class Transport:
    """A GraphQL endpoint and file downloads with retries. ``verify`` is requests' TLS setting (True, or a CA
    bundle file; False only when asked for); ``sleep`` is injectable for tests."""

    def __init__(self, url: str, api_key: str, *, policy: RetryPolicy | None = None, verify: bool | str = True,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self.policy = policy or RetryPolicy()
        self.verify = verify
        self._key = api_key
        self._sleep = sleep
        self._session = self._new_session()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.verify
        return session

    def __repr__(self) -> str:  # never show the key
        return f"Transport({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None  # a new session in each worker process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._session = self._new_session()

    def _request(self, method: str, url: str, what: str, budget: _Budget, **kwargs: Any) -> requests.Response:
        while True:
            retry_after = None
            try:
                response = self._session.request(method, url, timeout=self.policy.timeout, **kwargs)
            except requests.Timeout:
                attempt = budget.spend(f"no answer within {self.policy.timeout:g} s", stalled=True)
            except requests.exceptions.SSLError as exc:
                raise SourceError(f"{what}: TLS certificate check failed ({redact(str(exc.__context__ or exc))}); "
                                  "give your CA bundle with --ca-bundle or REQUESTS_CA_BUNDLE") from None
            except requests.ConnectionError:
                attempt = budget.spend("connection failed")
            else:
                if response.status_code in (401, 403) and "/graphql" in url:
                    raise SourceError(f"the RedBrick API refused the API key (HTTP {response.status_code}); "
                                      "check REDBRICK_API_KEY or your RedBrick CLI profile")
                if response.status_code not in _RETRY_STATUS:
                    if response.status_code >= 400:
                        raise SourceError(f"{what} was refused (HTTP {response.status_code}){_reason(response)}")
                    return response
                retry_after = response.headers.get("Retry-After")
                response.close()
                attempt = budget.spend(f"HTTP {response.status_code}")
            self._sleep(self.policy.delay(attempt, retry_after))

    def graphql(self, operation: str, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Run one GraphQL operation and return its ``data``; the server's error messages end up in the
        :class:`SourceError` when it refuses the request or answers with errors and no data."""
        payload = json.dumps({"operationName": operation, "query": query, "variables": dict(variables)})
        body = base64.b64encode(gzip.compress(payload.encode(), mtime=0))
        headers = {"ApiKey": self._key, "Content-Encoding-RB": "gzip", "Content-Type": "application/json",
                   "Accept": "application/json", "Accept-Encoding": "gzip"}
        what = f"RedBrick request {operation}"
        budget = _Budget(self.policy, what)
        while True:
            response = self._request("POST", self.url, what, budget, data=body, headers=headers)
            try:
                reply = response.json()
                break
            except ValueError:  # a reply cut short: retried like a dropped connection
                self._sleep(self.policy.delay(budget.spend("the reply is not JSON")))
        if not isinstance(reply, dict):
            raise SourceError(f"{what}: the reply is not a GraphQL response")
        data = reply.get("data")
        if reply.get("errors") and (not isinstance(data, dict) or None in data.values()):
            raise SourceError(f"{what}: {redact(_messages(reply['errors']))}")
        return dict(reply.get("data") or {})

    def download(self, url: str, path: str, *, what: str | None = None) -> str:
        """Fetch ``url`` to ``path`` (the entity, decoded when the server sent it gzip-encoded); returns
        ``path``. A gzip file must be intact (length and CRC) or it is fetched again."""
        name = what or os.path.basename(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.part"  # threads share a pid
        budget = _Budget(self.policy, f"download of {name}")
        while True:
            try:
                response = self._request("GET", url, f"download of {name}", budget, stream=True)
                expected = response.headers.get("Content-Length")
                encoded = response.headers.get("Content-Encoding", "").lower() == "gzip"
                with open(tmp, "wb") as f:
                    for chunk in response.raw.stream(1 << 20, decode_content=False):
                        f.write(chunk)
                size = os.path.getsize(tmp)
                if expected is not None and size != int(expected):
                    raise OSError(f"got {size} of {expected} bytes")
                if encoded:
                    _decode_gzip_file(tmp)
                if _is_gzip(tmp) and not gzip_intact(tmp):
                    raise OSError("the gzip data is truncated or corrupt")
                os.replace(tmp, path)
                return path
            except (OSError, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                if os.path.exists(tmp):
                    os.remove(tmp)
                stalled = isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError))
                attempt = budget.spend(redact(str(exc)) or type(exc).__name__, stalled=stalled)
                self._sleep(self.policy.delay(attempt))
            except SourceError as exc:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise exc.located(file=name) from None


def _messages(errors: Any) -> str:
    if not isinstance(errors, list):
        return str(errors)
    return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors) or "unknown error"


def _reason(response: requests.Response) -> str:
    """``: <the server's GraphQL error messages>`` when the body has them."""
    try:
        reply = response.json()
    except ValueError:
        return ""
    if isinstance(reply, dict) and reply.get("errors"):
        return f": {redact(_messages(reply['errors']))}"
    return ""


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _decode_gzip_file(path: str) -> None:
    """Undo a gzip transfer encoding in place."""
    from isal import igzip, isal_zlib

    decoded = f"{path}.decoded"
    try:
        with igzip.open(path, "rb") as src, open(decoded, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (OSError, EOFError, isal_zlib.error) as exc:  # type: ignore[misc]  # (ISA-L's inflate error is neither)
        if os.path.exists(decoded):
            os.remove(decoded)
        raise OSError(f"the gzip-encoded reply is truncated or corrupt ({exc})") from None
    os.replace(decoded, path)


def gzip_intact(path: str) -> bool:
    """Whether a gzip file decompresses to its end with a valid CRC and length (streamed, constant memory)."""
    from isal import isal_zlib

    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
            if not data:
                return False
            while data:
                decompressor = isal_zlib.decompressobj(wbits=31)  # one per gzip member
                while True:
                    decompressor.decompress(data, 1 << 22)
                    while decompressor.unconsumed_tail:
                        decompressor.decompress(decompressor.unconsumed_tail, 1 << 22)
                    if decompressor.eof:
                        data = decompressor.unused_data or f.read(1 << 20)
                        break
                    data = f.read(1 << 20)
                    if not data:
                        return False
        return True
    except (OSError, isal_zlib.error):  # type: ignore[misc]  # isal's error class is untyped
        return False
