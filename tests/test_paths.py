from __future__ import annotations

import os
import pickle
import random

import pytest

from labelport import WriterError, safe_name
from labelport.paths import UniqueNames, safe_join


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Case 001", "Case 001"),
        ("../../x", "_..-..-x"),  # no separator survives, no hidden name
        ("/etc/passwd", "-etc-passwd"),
        ("a\x00b", "a-b"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1", "_com1"),
        ("..", "fallback"),
        ("", "fallback"),
        ("trailing dots. . ", "trailing dots"),
        ("Tumör (links) #2", "Tumör (links) #2"),
        ("a:b*c?d", "a-b-c-d"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    got = safe_name(name, "fallback")
    assert got == expected
    assert "/" not in got and "\\" not in got and "\x00" not in got and got not in (".", "..")


def test_safe_name_hides_no_leading_dot() -> None:
    assert not safe_name(".hidden", "x").startswith(".")


def test_long_names_are_bounded_and_stay_distinct() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    sa, sb = safe_name(a, "f"), safe_name(b, "f")
    assert len(sa.encode()) <= 120 and len(sb.encode()) <= 120
    assert sa != sb
    multibyte = safe_name("é" * 200, "f")
    assert len(multibyte.encode()) <= 120
    multibyte.encode("utf-8")  # no broken characters


def test_unique_names_case_insensitive() -> None:
    names = UniqueNames()
    assert [names.take(n, "x") for n in ["CT", "ct", "CT", "MR", "", ""]] == ["CT", "ct-2", "CT-3", "MR", "x", "x-2"]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("wide", [False, True])
def test_a_text_set_is_a_set_of_strings(seed: int, wide: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """TextSet against Python's set, over random adds and look-ups of strings that share prefixes, differ in
    case or only in a lone surrogate, and are empty, through several growths of its table and a pickle; ``wide``:
    its text passes the largest offset a 32-bit end holds (made 50 bytes here) part way."""
    from labelport import textset
    from labelport.textset import TextSet

    if wide:
        monkeypatch.setattr(textset, "_LARGEST", 50)

    rng = random.Random(seed)
    pool = ["", "a", "A", "ab", "a\0", "é", "\ud800", "\ud800x", "名前", "\U0001f600"] + \
        [f"task-{n}" for n in range(rng.randrange(50, 400))]
    got, expected, order = TextSet(), set(), []
    for _ in range(800):
        item = rng.choice(pool) + rng.choice(["", "", "x", "-2"])
        if rng.random() < 0.5:
            new = item not in expected
            assert got.add(item) is new
            expected.add(item)
            order += [item] if new else []
        assert (item in got) == (item in expected) and (item.upper() in got) == (item.upper() in expected)
    assert len(got) == len(expected) and list(got) == order
    assert got._items._ends.typecode == ("q" if wide else "I")
    assert 5 not in got and None not in got
    again = pickle.loads(pickle.dumps(got))
    assert list(again) == order and all(item in again for item in order) and "nope" not in again


@pytest.mark.parametrize("bad", ["../x", "/etc/x", "a/../../x", "a/./b", "", "a//b", "a/\x00"])
def test_safe_join_refuses_escapes(tmp_path, bad: str) -> None:
    with pytest.raises(WriterError):
        safe_join(str(tmp_path), bad)


def test_safe_join_refuses_symlink_escape(tmp_path) -> None:
    (tmp_path / "root").mkdir()
    os.symlink("/tmp", tmp_path / "root" / "link")
    with pytest.raises(WriterError, match="leaves"):
        safe_join(str(tmp_path / "root"), "link/x")
    assert safe_join(str(tmp_path / "root"), "a/b.nii.gz") == str(tmp_path / "root" / "a" / "b.nii.gz")
