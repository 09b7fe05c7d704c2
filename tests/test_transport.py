"""The RedBrick transport against the emulator: encoding, the server's errors, retry budgets, downloads."""

from __future__ import annotations

import gzip
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redbrick_emulator import Emulator

from labelport import SourceError
from labelport.sources.queries import QUERIES
from labelport.sources.transport import RetryPolicy, Transport, redact

KEY = "k" * 43
ORG = "11111111-1111-4111-8111-111111111111"
MEMBERS = [{"user": {"userId": "u1", "email": "a@example.com", "givenName": "A"}}]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(KEY, slow_seconds=1.0) as emu:
        emu.root["members"] = lambda _info, orgId, onlyActive=None: MEMBERS
        yield emu


def _transport(emulator: Emulator, sleeps: list[float], key: str = KEY, **policy: Any) -> Transport:
    return Transport(emulator.url, key, policy=RetryPolicy(**{"attempts": 3, "timeout": 5.0, **policy}),
                     sleep=sleeps.append)


def _members(transport: Transport) -> dict[str, Any]:
    return transport.graphql("membersSDK", QUERIES["membersSDK"], {"orgId": ORG, "onlyActive": False})


def test_graphql_round_trip(emulator: Emulator) -> None:
    sleeps: list[float] = []
    assert _members(_transport(emulator, sleeps)) == {"members": MEMBERS}
    assert sleeps == [] and emulator.requests == [("POST", "membersSDK")]
    assert emulator.documents == [(QUERIES["membersSDK"], {"orgId": ORG, "onlyActive": False})]


def test_server_errors_are_retried_with_backoff(emulator: Emulator) -> None:
    emulator.fail("membersSDK", "500", times=2)
    sleeps: list[float] = []
    assert _members(_transport(emulator, sleeps)) == {"members": MEMBERS}
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9  # growing waits (with jitter)
    assert emulator.requests.count(("POST", "membersSDK")) == 3


def test_rate_limit_honours_retry_after(emulator: Emulator) -> None:
    emulator.fail("membersSDK", "429")
    sleeps: list[float] = []
    assert _members(_transport(emulator, sleeps)) == {"members": MEMBERS}
    assert sleeps == [2.0]


def test_a_refused_document_reports_the_servers_message_and_is_not_retried(emulator: Emulator) -> None:
    sleeps: list[float] = []
    query = "query membersSDK($orgId: UUID!) { members(orgId: $orgId) { user { userId nickname } } }"
    with pytest.raises(SourceError) as info:
        _transport(emulator, sleeps).graphql("membersSDK", query, {"orgId": ORG})
    assert str(info.value) == ("RedBrick request membersSDK was refused (HTTP 400): "
                               "Cannot query field 'nickname' on type 'User'. Did you mean 'givenName'?")
    assert sleeps == [] and emulator.requests == [("POST", "membersSDK")]
    bad_id = _transport(emulator, sleeps)
    with pytest.raises(SourceError, match="UUID cannot represent value: 'not-a-uuid'"):
        bad_id.graphql("membersSDK", QUERIES["membersSDK"], {"orgId": "not-a-uuid", "onlyActive": False})


def test_errors_without_data_are_reported(emulator: Emulator) -> None:
    def broken(_info: Any, orgId: str, onlyActive: bool | None = None) -> Any:
        raise RuntimeError("members are unavailable")

    emulator.root["members"] = broken
    with pytest.raises(SourceError, match="RedBrick request membersSDK: members are unavailable"):
        _members(_transport(emulator, []))


def test_bad_key_is_one_clear_error_without_the_key(emulator: Emulator) -> None:
    sleeps: list[float] = []
    wrong = "w" * 43
    with pytest.raises(SourceError) as info:
        _members(_transport(emulator, sleeps, key=wrong))
    assert "refused the API key (HTTP 401)" in str(info.value) and wrong not in str(info.value)
    assert wrong not in repr(_transport(emulator, sleeps, key=wrong))
    assert sleeps == [] and emulator.requests == [("POST", "unauthorized")]


def test_stalls_have_their_own_budget(emulator: Emulator) -> None:
    emulator.slow_seconds = 0.6
    emulator.fail("membersSDK", "slow", times=2)
    emulator.fail("membersSDK", "500")
    sleeps: list[float] = []
    # two tries for server errors, two more for stalls: a 500 and two stalls still succeed
    transport = _transport(emulator, sleeps, attempts=2, stalls=2, timeout=0.3)
    assert _members(transport) == {"members": MEMBERS}
    assert len(sleeps) == 3
    emulator.fail("membersSDK", "slow", times=3)
    with pytest.raises(SourceError, match=r"failed after 3 attempts \(no answer within 0.3 s\)"):
        _members(transport)


def test_the_deadline_bounds_retries(emulator: Emulator) -> None:
    emulator.fail("membersSDK", "500", times=5)
    with pytest.raises(SourceError, match=r"gave up after 0 s \(HTTP 500\)"):
        _members(_transport(emulator, [], attempts=10, deadline=0.0))


def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    sleeps: list[float] = []
    transport = Transport(f"http://127.0.0.1:{port}/api/graphql/", KEY, policy=RetryPolicy(attempts=3),
                          sleep=sleeps.append)
    with pytest.raises(SourceError, match=r"after 3 attempts \(connection failed\)"):
        _members(transport)
    assert len(sleeps) == 2


@pytest.mark.parametrize("fault", ["drop", "truncate", "500", "slow"])
def test_download_is_retried_and_never_left_half_written(emulator: Emulator, tmp_path: Path, fault: str) -> None:
    payload = gzip.compress(os.urandom(1 << 16), mtime=0)
    emulator.files["label.nii.gz"] = payload
    emulator.fail("label.nii.gz", fault)
    emulator.slow_seconds = 0.6
    sleeps: list[float] = []
    target = tmp_path / "out" / "label.nii.gz"
    _transport(emulator, sleeps, timeout=0.3).download(emulator.file_url("label.nii.gz"), str(target))
    assert target.read_bytes() == payload and len(sleeps) == 1
    assert [p.name for p in target.parent.iterdir()] == ["label.nii.gz"]


def test_a_truncated_gzip_with_a_matching_length_is_fetched_again(emulator: Emulator, tmp_path: Path) -> None:
    payload = gzip.compress(os.urandom(1 << 16), mtime=0)
    emulator.files["label.nii.gz"] = payload
    emulator.fail("label.nii.gz", "truncate")  # half the body, and a Content-Length that says so
    target = tmp_path / "label.nii.gz"
    sleeps: list[float] = []
    _transport(emulator, sleeps).download(emulator.file_url("label.nii.gz"), str(target))
    assert target.read_bytes() == payload and len(sleeps) == 1


def test_gzip_transfer_encoding_is_decoded(emulator: Emulator, tmp_path: Path) -> None:
    emulator.files["labels.json"] = gzip.compress(b'[{"labelid": "a"}]', mtime=0)
    emulator.encodings["labels.json"] = "gzip"
    target = tmp_path / "labels.json"
    _transport(emulator, []).download(emulator.file_url("labels.json"), str(target))
    assert target.read_bytes() == b'[{"labelid": "a"}]'


def test_a_damaged_gzip_encoding_is_fetched_again_and_leaves_nothing(emulator: Emulator, tmp_path: Path) -> None:
    """A reply whose gzip transfer encoding has an invalid deflate block (ISA-L's own error type) counts as a
    failed attempt like a truncated one: retried, then one error naming the file, with no file left behind."""
    body = gzip.compress(b"".join(b"label %d, " % n for n in range(5000)), mtime=0)  # (compressed, not stored)
    emulator.files["labels.json"] = body[:20] + b"\xff" * 64 + body[84:]
    emulator.encodings["labels.json"] = "gzip"
    sleeps: list[float] = []
    with pytest.raises(SourceError) as info:
        _transport(emulator, sleeps).download(emulator.file_url("labels.json"), str(tmp_path / "labels.json"))
    assert "download of labels.json failed after" in str(info.value) and "corrupt" in str(info.value)
    assert sleeps and list(tmp_path.iterdir()) == []


def test_download_that_keeps_failing_leaves_nothing_and_names_the_file(emulator: Emulator, tmp_path: Path) -> None:
    emulator.files["label.nii.gz"] = gzip.compress(b"x" * 5000, mtime=0)
    emulator.fail("label.nii.gz", "drop", times=3)
    target = tmp_path / "label.nii.gz"
    with pytest.raises(SourceError) as info:
        _transport(emulator, []).download(emulator.file_url("label.nii.gz"), str(target), what="labels/t/0.nii.gz")
    assert "download of labels/t/0.nii.gz failed after 3 attempts" in str(info.value)
    assert emulator.signature not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_an_expired_signature_is_a_clear_error(emulator: Emulator, tmp_path: Path) -> None:
    emulator.files["a.nii.gz"] = b"x"
    url = emulator.file_url("a.nii.gz").replace(emulator.signature, "expired")
    with pytest.raises(SourceError, match=r"download of a.nii.gz was refused \(HTTP 403\)"):
        _transport(emulator, []).download(url, str(tmp_path / "a.nii.gz"))


def test_signatures_never_reach_messages_or_debug_logs(emulator: Emulator, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    url = emulator.file_url("labels/x.json")
    assert emulator.signature not in redact(f"GET {url} failed") and "labels/x.json" in redact(url)
    assert redact('"GET /files/a?X-Amz-Signature=abc HTTP/1.1" 200') == '"GET /files/a?… HTTP/1.1" 200'
    emulator.files["labels/x.json"] = b"[]"
    with caplog.at_level(logging.DEBUG):
        _transport(emulator, []).download(url, str(tmp_path / "x.json"))
        _members(_transport(emulator, []))
    assert "/files/labels/x.json" in caplog.text
    assert emulator.signature not in caplog.text and KEY not in caplog.text
