"""Reaching a RedBrick project as RedBrick's own tools do: the CLI's credentials file and profiles, the URL
forms they store, TLS (verified by default, a CA bundle for private CAs, RedBrick's switch to turn it off, loudly),
and no key or presigned URL in any output, --debug included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from redbrick_emulator import Emulator
from redbrick_project import ORG, PROJECT, serve_export

from labelport import SourceError
from labelport.cli import cli
from labelport.sources.credentials import credentials_file, endpoint, login, parse_since

KEY = "c" * 43
OTHER = "o" * 43


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of its own, no virtual environment, no RedBrick variables."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("VIRTUAL_ENV", "REDBRICK_API_KEY", "REDBRICK_URL", "REDBRICK_PROFILE", "RB_DISABLE_SSL_VERIFICATION",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def _credentials(folder: Path, profiles: dict[str, dict[str, str]], default: str | None) -> Path:
    lines = [f"[default]\nprofile = {default}\n"] if default else []
    lines += [f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) for name, values in profiles.items()]
    path = folder / ".redbrickai" / "credentials"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def test_the_credentials_file_is_where_redbricks_sdk_looks(home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert credentials_file() == home / ".redbrickai" / "credentials"
    venv = tmp_path / "venv"
    venv.mkdir()
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    assert credentials_file() == venv / ".redbrickai" / "credentials"
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "gone"))  # not a folder: ignored, as the SDK ignores it
    assert credentials_file() == home / ".redbrickai" / "credentials"


def test_profiles_are_chosen_as_the_redbrick_cli_chooses_them(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _credentials(home, {"work": {"key": KEY, "org": ORG.upper(), "url": "https://work.example.com"},
                        "lab": {"key": OTHER, "org": "lab-org", "url": "https://api.redbrickai.com"}}, "work")
    chosen = login()
    assert (chosen.key, chosen.org, chosen.url) == (KEY, ORG, "https://work.example.com/api/graphql/")
    assert KEY not in repr(chosen)
    monkeypatch.setenv("REDBRICK_PROFILE", "lab")
    assert (login().key, login().url) == (OTHER, "https://api.redbrickai.com/graphql/")
    assert login(profile="work").key == KEY  # --profile wins over REDBRICK_PROFILE
    monkeypatch.setenv("REDBRICK_API_KEY", "e" * 43)
    monkeypatch.setenv("REDBRICK_URL", "http://localhost:4000")
    assert (login().key, login().org, login().url) == ("e" * 43, "lab-org", "http://localhost:4000/graphql/")
    with pytest.raises(SourceError, match=r"no RedBrick profile 'nope' \(profiles: work, lab\)"):
        login(profile="nope")


def test_a_browser_login_profile_needs_an_api_key(home: Path) -> None:
    _credentials(home, {"sso": {"type": "session", "org": ORG, "url": "https://api.redbrickai.com"}}, "sso")
    with pytest.raises(SourceError) as info:
        login()
    assert str(info.value).startswith("RedBrick profile 'sso' is a browser (session) login; labelport needs an "
                                      "API key: set REDBRICK_API_KEY")


def test_no_key_anywhere(home: Path) -> None:
    with pytest.raises(SourceError, match="no RedBrick API key: set REDBRICK_API_KEY or log in with the RedBrick CLI"):
        login()


def test_url_forms() -> None:
    assert endpoint("https://api.redbrickai.com") == "https://api.redbrickai.com/graphql/"
    assert endpoint("https://API.redbrickai.com/") == "https://api.redbrickai.com/graphql/"
    assert endpoint("https://rb.hospital.org") == "https://rb.hospital.org/api/graphql/"
    assert endpoint("rb.hospital.org") == "https://rb.hospital.org/api/graphql/"
    assert endpoint("http://localhost:4000") == "http://localhost:4000/graphql/"
    assert endpoint("http://127.0.0.1:8080/api/graphql/") == "http://127.0.0.1:8080/api/graphql/"  # a full endpoint
    with pytest.raises(SourceError, match="not a RedBrick API URL"):
        endpoint("ftp://example.com")


def test_since_forms() -> None:
    assert parse_since("2025-03-02") == "2025-03-02T00:00:00+00:00"
    assert parse_since("2025-03-02T12:30:00Z") == "2025-03-02T12:30:00+00:00"
    assert parse_since("2025-03-02T12:30:00+01:00") == "2025-03-02T12:30:00+01:00"
    with pytest.raises(SourceError, match="has no time zone"):
        parse_since("2025-03-02T12:30:00")


def test_a_profile_with_the_base_url_exports_a_project_by_id(home: Path, demo: Path, tmp_path: Path) -> None:
    with Emulator(KEY) as emulator:
        serve_export(emulator, demo)
        _credentials(home, {"emu": {"key": KEY, "org": ORG, "url": emulator.base_url}}, "emu")
        result = CliRunner().invoke(cli, ["export", f"redbrick:{PROJECT}", "-o", str(tmp_path / "out"), "-w",
                                          "nifti"], env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
        assert result.exit_code == 0, result.output
        assert len(json.loads((tmp_path / "out" / "tasks.json").read_text())) == 4
        tasks = CliRunner().invoke(cli, ["tasks", f"redbrick:{ORG}/{PROJECT}", "--profile", "emu"])
        assert tasks.exit_code == 0 and len(tasks.output.splitlines()) == 4


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                           str(cert), "-days", "1", "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr.decode()[-200:]}")
    return str(cert), str(key)


@pytest.fixture
def tls_server(certificate: tuple[str, str], demo: Path) -> Iterator[Emulator]:
    with Emulator(KEY, tls=certificate) as emulator:
        serve_export(emulator, demo)
        yield emulator


def _export(emulator: Emulator, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["export", f"redbrick:{ORG}/{PROJECT}", "-o", str(tmp_path / "out"), "-w", "nifti", "--api-url",
            emulator.url, *extra]
    return CliRunner().invoke(cli, args, env={"REDBRICK_API_KEY": KEY, "XDG_CACHE_HOME": str(tmp_path / "cache"),
                                              **(env or {})})


def test_tls_is_verified_by_default(home: Path, tls_server: Emulator, tmp_path: Path) -> None:
    result = _export(tls_server, tmp_path)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: RedBrick request getProjectSDK: TLS certificate check failed")
    assert "--ca-bundle" in result.output and tls_server.requests == []


def test_a_ca_bundle_for_a_private_ca(home: Path, tls_server: Emulator, certificate: tuple[str, str],
                                      tmp_path: Path) -> None:
    result = _export(tls_server, tmp_path, "--ca-bundle", certificate[0])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    by_env = _export(tls_server, tmp_path / "env", env={"REQUESTS_CA_BUNDLE": certificate[0]})
    assert by_env.exit_code == 0, by_env.output
    missing = _export(tls_server, tmp_path, "--ca-bundle", str(tmp_path / "nope.pem"))
    assert missing.exit_code == 1 and missing.output.startswith("error: file ") and "CA bundle not found" in \
        missing.output


def test_redbricks_switch_turns_verification_off_loudly(home: Path, tls_server: Emulator, tmp_path: Path) -> None:
    result = _export(tls_server, tmp_path, env={"RB_DISABLE_SSL_VERIFICATION": "1"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "TLS certificate verification is OFF" in line]
    assert len(lines) == 2 and lines[0].startswith("warning: ")  # at the start and again in the summary
    assert "InsecureRequestWarning" not in result.output


def test_debug_output_holds_no_key_and_no_signature(home: Path, demo: Path, tmp_path: Path) -> None:
    with Emulator(KEY) as emulator:
        serve_export(emulator, demo)
        env = {**os.environ, "REDBRICK_API_KEY": KEY, "XDG_CACHE_HOME": str(tmp_path / "cache")}
        runs = [subprocess.run([sys.executable, "-m", "labelport.cli", "--debug", *args], capture_output=True,
                               text=True, env=env, timeout=120)
                for args in (["export", f"redbrick:{ORG}/{PROJECT}", "-o", str(tmp_path / "out"), "-w", "nifti",
                              "--api-url", emulator.url, "-j", "1"],
                             ["events", f"redbrick:{ORG}/{PROJECT}", "--api-url", emulator.url])]
        emulator.files.pop(next(n for n in emulator.files if n.startswith("labelmaps/")))  # a failure's message
        runs.append(subprocess.run([sys.executable, "-m", "labelport.cli", "--debug", "export",
                                    f"redbrick:{ORG}/{PROJECT}", "-o", str(tmp_path / "fail"), "-w", "nifti",
                                    "--api-url", emulator.url, "-j", "1"], capture_output=True, text=True,
                                   env={**env, "XDG_CACHE_HOME": str(tmp_path / "other")}, timeout=300))
    assert [r.returncode for r in runs] == [0, 0, 1]
    text = "".join(r.stdout + r.stderr for r in runs)
    assert "/files/labelmaps/" in text  # urllib3's debug lines are there, without their query strings
    assert emulator.signature not in text and KEY not in text and "X-Amz-Signature" not in text
