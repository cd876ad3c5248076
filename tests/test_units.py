from __future__ import annotations

import pytest

from membound import MemboundError, SizeError, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24 MB", 24_000_000),
        ("1.5GiB", 1_610_612_736),
        ("512MB", 512_000_000),
        ("300k", 300_000),
        ("300 KiB", 307_200),
        ("2 mib", 2 * 2**20),
        ("1e3", 1000),
        ("0", 0),
        (4096, 4096),
        (12.6, 13),
        ("  7 B ", 7),
    ],
)
def test_parse_size_accepts(text: str | int | float, expected: int) -> None:
    assert expected == parse_size(text)


@pytest.mark.parametrize("junk", ["lots", "", "12 parsecs", "MB", "nan", True, None])
def test_parse_size_rejects_with_accepted_forms(junk: object) -> None:
    with pytest.raises(SizeError) as info:
        parse_size(junk)  # type: ignore[arg-type]
    assert "'24 MB'" in str(info.value)
    assert isinstance(info.value, MemboundError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("negative", ["-5MB", " -1.5 GiB", "-5", -1])
def test_a_negative_size_is_called_negative_not_unreadable(negative: object) -> None:
    with pytest.raises(SizeError, match="a size cannot be negative"):
        parse_size(negative)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0 B"), (1023, "1023 B"), (2048, "2.0 KiB"), (3 * 2**20, "3.0 MiB"), (None, "-")],
)
def test_format_size(n: int | None, expected: str) -> None:
    assert expected == format_size(n)


def test_format_size_signed_and_negative() -> None:
    assert format_size(2**20, signed=True) == "+1.0 MiB"
    assert format_size(-(2**20), signed=True) == "-1.0 MiB"
