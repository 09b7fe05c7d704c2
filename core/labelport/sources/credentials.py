"""Where a RedBrick project is and how to reach it: API key, organization and endpoint from the command line, the
environment or the RedBrick CLI's credentials file, chosen the way RedBrick's own tools choose them; the
endpoint from the URL forms they accept; and the TLS setting.

The credentials file is ``$VIRTUAL_ENV/.redbrickai/credentials`` while a virtual environment is active, else
``~/.redbrickai/credentials``: an INI file with one section per profile (``key``, ``org``, ``url``, and
``type = session`` for a browser login) and ``[default] profile = NAME``. The profile is ``--profile``, else
``REDBRICK_PROFILE``, else the default one. ``REDBRICK_API_KEY`` and ``REDBRICK_URL`` override the profile.
"""

from __future__ import annotations

import configparser
import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import SourceError

__all__ = ["DEFAULT_URL", "Login", "credentials_file", "endpoint", "login", "parse_since", "tls"]

DEFAULT_URL = "https://api.redbrickai.com"
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def credentials_file() -> Path:
    """The RedBrick CLI's credentials file, where its SDK looks for it."""
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and os.path.isdir(os.path.expanduser(venv)):
        return Path(os.path.expanduser(venv)) / ".redbrickai" / "credentials"
    return Path.home() / ".redbrickai" / "credentials"


@dataclass(frozen=True)
class Login:
    """An API key, the organization it belongs to (when known) and the GraphQL endpoint."""

    key: str
    org: str | None
    url: str

    def __repr__(self) -> str:  # never show the key
        return f"Login(org={self.org!r}, url={self.url!r})"


def _profile(name: str | None) -> tuple[str | None, dict[str, str]]:
    """(profile name, its settings) from the credentials file; ``({}, None)`` when there is none."""
    path = credentials_file()
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the RedBrick credentials ({type(exc).__name__})", file=str(path)) from None
    chosen = name or os.environ.get("REDBRICK_PROFILE") or parser.get("default", "profile", fallback=None)
    if not chosen:
        return None, {}
    if not parser.has_section(chosen) or chosen == "default":
        listed = ", ".join(s for s in parser.sections() if s != "default") or "none"
        raise SourceError(f"no RedBrick profile {chosen!r} (profiles: {listed})", file=str(path))
    return chosen, dict(parser[chosen])


def login(*, key: str | None = None, url: str | None = None, profile: str | None = None) -> Login:
    """The key, organization and endpoint to use: explicit values, then ``REDBRICK_API_KEY`` and
    ``REDBRICK_URL``, then the chosen profile of the credentials file."""
    key = key or os.environ.get("REDBRICK_API_KEY", "").strip() or None
    url = url or os.environ.get("REDBRICK_URL") or None
    name, settings = _profile(profile)
    if not key:
        if name and (settings.get("type", "apikey") == "session" or not settings.get("key")):
            raise SourceError(f"RedBrick profile {name!r} is a browser (session) login; labelport needs an API key: "
                              "set REDBRICK_API_KEY or add a profile with `redbrick config` and an API key")
        key = settings.get("key", "").strip() or None
    if not key:
        raise SourceError("no RedBrick API key: set REDBRICK_API_KEY or log in with the RedBrick CLI "
                          f"(redbrick config; looked in {credentials_file()})")
    org = settings.get("org", "").strip().lower() or None
    return Login(key, org, endpoint(url or settings.get("url") or DEFAULT_URL))


def endpoint(url: str) -> str:
    """The GraphQL endpoint for a URL: a full endpoint (``.../graphql``) is kept; otherwise the base URL
    RedBrick's CLI stores is mapped as its SDK maps it (``https://api.redbrickai.com`` -> ``.../graphql/``,
    another host -> ``https://HOST/api/graphql/``; loopback and AWS addresses keep their scheme and path)."""
    text = url.strip()
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"not a RedBrick API URL: {url!r}")
    if parts.path.rstrip("/").endswith("/graphql"):
        return text
    base = text.rstrip("/")
    host = parts.netloc.lower()
    if "api.redbrickai.com" in host:
        return DEFAULT_URL + "/graphql/"
    if host.split(":")[0] in _LOOPBACK or host.startswith("[::1]") or "amazonaws.com" in host:
        return base + "/graphql/"
    return f"https://{host}/api/graphql/"


def tls(ca_bundle: str | None = None) -> tuple[bool | str, str | None]:
    """(requests' ``verify``, a warning to show on every run). Certificates are always checked, against
    ``ca_bundle`` when given (else requests' default, which honours ``REQUESTS_CA_BUNDLE``). RedBrick's
    ``RB_DISABLE_SSL_VERIFICATION`` switch turns checking off, loudly."""
    if ca_bundle:
        if not os.path.isfile(ca_bundle):
            raise SourceError("CA bundle not found", file=ca_bundle)
        return ca_bundle, None
    if os.environ.get("RB_DISABLE_SSL_VERIFICATION"):
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # one warning per run, not per request
        return False, ("TLS certificate verification is OFF (RB_DISABLE_SSL_VERIFICATION is set): anyone on the "
                       "network path can read the API key and the data; use --ca-bundle FILE instead")
    return True, None


def parse_since(text: str) -> str:
    """``--since``: an ISO 8601 time with a zone (``2025-03-02T12:00:00+01:00``, ``...Z``) or a date (midnight
    UTC), as the ISO text RedBrick's API takes."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            when = datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc)
        else:
            when = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise SourceError(f"--since {text!r} is not an ISO 8601 time or date (e.g. 2025-03-02T12:00:00Z or "
                          "2025-03-02)") from None
    if when.tzinfo is None:
        raise SourceError(f"--since {text!r} has no time zone; add one, e.g. {value}Z for UTC")
    return when.isoformat()
