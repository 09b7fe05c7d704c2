"""HTTP to the RedBrick API, as its SDK speaks it, with the retries the SDK lacks.

GraphQL requests are POSTed with a body of ``base64(gzip(json))`` and the API key in an ``ApiKey`` header.
Connection errors, timeouts, HTTP 429 (honouring ``Retry-After``) and 5xx are retried with exponential backoff
and jitter; other 4xx are not. A refused key (401/403) is one clear error that never contains the key.
Downloads stream to a temporary file next to the target, are checked (length, gzip integrity) and then
renamed, so a cut connection never leaves a partial file; an intact file already there is not fetched again.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import SourceError

__all__ = ["RetryPolicy", "Transport"]

_RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff: the n-th retry waits ``base * 2**n`` seconds (at most ``cap``) plus up to 50 %
    jitter, or what ``Retry-After`` asks for."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    timeout: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(self.cap, max(0.0, float(retry_after)))
            except ValueError:
                pass
        wait = min(self.cap, self.base * 2**attempt)
        return float(wait + random.uniform(0, wait / 2))


class Transport:
    """A GraphQL endpoint and file downloads with retries. ``sleep`` is injectable for tests."""

    def __init__(self, url: str, api_key: str, *, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self.policy = policy or RetryPolicy()
        self._key = api_key
        self._sleep = sleep
        self._session = requests.Session()

    def __repr__(self) -> str:  # never show the key
        return f"Transport({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None  # a new session in each worker process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._session = requests.Session()

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        last = ""
        for attempt in range(self.policy.attempts):
            try:
                response = self._session.request(method, url, timeout=self.policy.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = type(exc).__name__
                if attempt + 1 < self.policy.attempts:
                    self._sleep(self.policy.delay(attempt))
                continue
            if response.status_code in (401, 403):
                raise SourceError(f"the RedBrick API refused the API key (HTTP {response.status_code}); "
                                  "check REDBRICK_API_KEY")
            if response.status_code in _RETRY_STATUS:
                last = f"HTTP {response.status_code}"
                if attempt + 1 < self.policy.attempts:
                    self._sleep(self.policy.delay(attempt, response.headers.get("Retry-After")))
                continue
            if response.status_code >= 400:
                raise SourceError(f"{what} failed: HTTP {response.status_code}")
            return response
        raise SourceError(f"{what} failed after {self.policy.attempts} attempts ({last})")

    def graphql(self, operation: str, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Run one GraphQL operation and return its ``data``."""
        payload = json.dumps({"operationName": operation, "query": query, "variables": dict(variables)})
        body = base64.b64encode(gzip.compress(payload.encode(), mtime=0))
        headers = {"ApiKey": self._key, "Content-Encoding-RB": "gzip", "Content-Type": "text/plain",
                   "Accept-Encoding": "gzip"}
        response = self._request("POST", self.url, f"RedBrick request {operation}", data=body, headers=headers)
        try:
            reply = response.json()
        except ValueError:
            raise SourceError(f"RedBrick request {operation}: the reply is not JSON") from None
        if reply.get("errors") and not reply.get("data"):
            messages = "; ".join(str(e.get("message", e)) for e in reply["errors"])
            raise SourceError(f"RedBrick request {operation}: {messages}")
        return dict(reply.get("data") or {})

    def download(self, url: str, path: str, *, gzipped: bool = False) -> str:
        """Fetch ``url`` to ``path`` (skipped when an intact file is there); returns ``path``."""
        if os.path.isfile(path) and (not gzipped or _gzip_intact(path)):
            return path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.part"  # threads share a pid
        for attempt in range(self.policy.attempts):
            try:
                response = self._request("GET", url, f"download of {os.path.basename(path)}", stream=True)
                expected = response.headers.get("Content-Length")
                with open(tmp, "wb") as f:
                    for chunk in response.iter_content(1 << 20):
                        f.write(chunk)
                size = os.path.getsize(tmp)
                if expected is not None and size != int(expected):
                    raise OSError(f"got {size} of {expected} bytes")
                if gzipped and not _gzip_intact(tmp):
                    raise OSError("the gzip data is truncated or corrupt")
                os.replace(tmp, path)
                return path
            except (OSError, requests.RequestException) as exc:
                if os.path.exists(tmp):
                    os.remove(tmp)
                if attempt + 1 >= self.policy.attempts:
                    raise SourceError(f"download failed after {self.policy.attempts} attempts ({exc})",
                                      file=os.path.basename(path)) from None
                self._sleep(self.policy.delay(attempt))
        raise AssertionError("unreachable")


def _gzip_intact(path: str) -> bool:
    """Whether a gzip file decompresses to its end with a valid checksum (streamed, constant memory)."""
    decompressor = zlib.decompressobj(wbits=31)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                decompressor.decompress(chunk, 1 << 20)
                while decompressor.unconsumed_tail:
                    decompressor.decompress(decompressor.unconsumed_tail, 1 << 20)
        return decompressor.eof
    except (OSError, zlib.error):
        return False
