"""The RedBrick transport against the emulator: encoding, retries, faults, downloads."""

from __future__ import annotations

import gzip
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from redbrick_emulator import Emulator

from labelport import SourceError
from labelport.sources.transport import RetryPolicy, Transport

KEY = "k" * 43


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(KEY, slow_seconds=1.0) as emu:
        emu.handlers["echoSDK"] = lambda variables: {"echo": variables}
        yield emu


def _transport(emulator: Emulator, sleeps: list[float], key: str = KEY, timeout: float = 5.0) -> Transport:
    return Transport(emulator.url, key, policy=RetryPolicy(attempts=3, timeout=timeout), sleep=sleeps.append)


def test_graphql_round_trip(emulator: Emulator) -> None:
    sleeps: list[float] = []
    data = _transport(emulator, sleeps).graphql("echoSDK", "query echoSDK { echo }", {"orgId": "o", "n": 3})
    assert data == {"echo": {"orgId": "o", "n": 3}}
    assert sleeps == [] and emulator.requests == [("POST", "echoSDK")]


def test_server_errors_are_retried_with_backoff(emulator: Emulator) -> None:
    emulator.fail("echoSDK", "500", times=2)
    sleeps: list[float] = []
    assert _transport(emulator, sleeps).graphql("echoSDK", "q", {"a": 1}) == {"echo": {"a": 1}}
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9  # growing waits (with jitter)
    assert emulator.requests.count(("POST", "echoSDK")) == 3


def test_rate_limit_honours_retry_after(emulator: Emulator) -> None:
    emulator.fail("echoSDK", "429")
    sleeps: list[float] = []
    assert _transport(emulator, sleeps).graphql("echoSDK", "q", {}) == {"echo": {}}
    assert sleeps == [2.0]


def test_client_errors_are_not_retried(emulator: Emulator) -> None:
    sleeps: list[float] = []
    with pytest.raises(SourceError, match="HTTP 400"):
        _transport(emulator, sleeps).graphql("noSuchSDK", "q", {})
    assert sleeps == [] and emulator.requests == [("POST", "noSuchSDK")]


def test_bad_key_is_one_clear_error_without_the_key(emulator: Emulator) -> None:
    sleeps: list[float] = []
    wrong = "w" * 43
    with pytest.raises(SourceError) as info:
        _transport(emulator, sleeps, key=wrong).graphql("echoSDK", "q", {})
    assert "refused the API key (HTTP 401)" in str(info.value) and wrong not in str(info.value)
    assert wrong not in repr(_transport(emulator, sleeps, key=wrong))
    assert sleeps == [] and emulator.requests == [("POST", "unauthorized")]


def test_slow_response_past_the_timeout_is_retried(emulator: Emulator) -> None:
    emulator.fail("echoSDK", "slow")
    sleeps: list[float] = []
    assert _transport(emulator, sleeps, timeout=0.3).graphql("echoSDK", "q", {}) == {"echo": {}}
    assert len(sleeps) == 1


def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    sleeps: list[float] = []
    transport = Transport(f"http://127.0.0.1:{port}/api/graphql/", KEY, policy=RetryPolicy(attempts=3),
                          sleep=sleeps.append)
    with pytest.raises(SourceError, match="after 3 attempts \\(ConnectionError\\)"):
        transport.graphql("echoSDK", "q", {})
    assert len(sleeps) == 2


@pytest.mark.parametrize("fault", ["drop", "truncate", "500"])
def test_download_is_retried_and_never_left_half_written(emulator: Emulator, tmp_path: Path, fault: str) -> None:
    payload = gzip.compress(os.urandom(1 << 16), mtime=0)
    emulator.files["label.nii.gz"] = payload
    emulator.fail("label.nii.gz", fault)
    sleeps: list[float] = []
    target = tmp_path / "out" / "label.nii.gz"
    _transport(emulator, sleeps).download(emulator.file_url("label.nii.gz"), str(target), gzipped=True)
    assert target.read_bytes() == payload and len(sleeps) == 1
    assert [p.name for p in target.parent.iterdir()] == ["label.nii.gz"]


def test_download_that_keeps_failing_leaves_nothing(emulator: Emulator, tmp_path: Path) -> None:
    emulator.files["label.nii.gz"] = gzip.compress(b"x" * 5000, mtime=0)
    emulator.fail("label.nii.gz", "drop", times=3)
    target = tmp_path / "label.nii.gz"
    with pytest.raises(SourceError, match="download failed after 3 attempts"):
        _transport(emulator, []).download(emulator.file_url("label.nii.gz"), str(target), gzipped=True)
    assert list(tmp_path.iterdir()) == []


def test_intact_files_are_not_fetched_again(emulator: Emulator, tmp_path: Path) -> None:
    payload = gzip.compress(b"labels" * 1000, mtime=0)
    emulator.files["a.nii.gz"] = payload
    target = tmp_path / "a.nii.gz"
    transport = _transport(emulator, [])
    transport.download(emulator.file_url("a.nii.gz"), str(target), gzipped=True)
    transport.download(emulator.file_url("a.nii.gz"), str(target), gzipped=True)
    assert emulator.requests.count(("GET", "a.nii.gz")) == 1
    target.write_bytes(payload[:-10])  # damaged since: fetched again
    transport.download(emulator.file_url("a.nii.gz"), str(target), gzipped=True)
    assert emulator.requests.count(("GET", "a.nii.gz")) == 2 and target.read_bytes() == payload
