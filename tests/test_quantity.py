"""Kubernetes quantities: exact conversion, rounding up, and one clear error per bad value."""
import math
from fractions import Fraction

import pytest
from conftest import examples
from hypothesis import given, settings, strategies as st

from numasched import codes
from numasched.io import quantity as q


@pytest.mark.parametrize("text, millicores", [
    ("500m", 500), ("1.5", 1500), ("2", 2000), ("0.1", 100), ("1e3", 1_000_000), ("1E-3", 1),
    ("0.1m", 1), ("250u", 1), ("16", 16_000), ("1k", 1_000_000), (".5", 500), ("+2", 2000),
    (4000, 4000),
])
def test_cpu(text, millicores):
    assert q.cpu_millicores(text) == millicores


@pytest.mark.parametrize("text, num_bytes", [
    ("2Gi", 2 * 2**30), ("1G", 10**9), ("267242119168", 267242119168), ("1.5Gi", 3 * 2**29),
    ("128974848", 128974848), ("129e6", 129_000_000), ("123Mi", 123 * 2**20), ("1Ki", 1024),
    ("0.5", 1), (2**40, 2**40), ("1Ei", 2**60),
])
def test_memory(text, num_bytes):
    assert q.memory_bytes(text) == num_bytes


@pytest.mark.parametrize("value, fragment", [
    ("2GB", "unknown unit 'GB'"), ("abc", "not a number"), ("-1", "must not be negative"),
    ("1e3Gi", "an exponent and a unit"), ("", "not a number"), (1.5, "got 1.5 (float)"),
    (True, "(bool)"), (None, "(NoneType)"), ("1e99", "exponent out of range"), ("1..2", "not a number"),
])
def test_refused_with_field_and_value(value, fragment):
    with pytest.raises(ValueError) as info:
        q.memory_bytes(value, field="spec.memory")
    assert str(info.value).startswith("spec.memory: ")
    assert fragment in str(info.value)


def test_count():
    assert q.count("10") == 10 and q.count("1k") == 1000 and q.count(3) == 3
    with pytest.raises(ValueError, match="whole number"):
        q.count("1.5", field="pods")


@given(st.integers(min_value=0, max_value=2**50))
def test_format_round_trips(n):
    assert q.cpu_millicores(q.format_cpu(n)) == n
    assert q.memory_bytes(q.format_memory(n)) == n


_UNITS = {"": 1, "m": Fraction(1, 1000), "k": 1000, "M": 10**6, "Ki": 1024, "Mi": 2**20,
          "Gi": 2**30, "u": Fraction(1, 10**6), "n": Fraction(1, 10**9)}


@given(st.text("0123456789", min_size=1, max_size=12), st.text("0123456789", max_size=6),
       st.one_of(st.sampled_from(sorted(_UNITS)).map(lambda u: ("unit", u)),
                 st.integers(-6, 6).map(lambda e: ("exp", e))))
@settings(max_examples=examples(200))
def test_the_parser_agrees_with_exact_decimal_arithmetic(whole, fraction, tail):
    text = whole + (f".{fraction}" if fraction else "")
    number = Fraction(text)
    if tail[0] == "unit":
        text, number = text + tail[1], number * _UNITS[tail[1]]
    else:
        text, number = f"{text}e{tail[1]}", number * Fraction(10) ** tail[1]
    assert q.parse(text, "x") == number
    if math.ceil(number) <= codes.MAX_REQUEST_AMOUNT:
        assert q.memory_bytes(text) == math.ceil(number)
    else:
        with pytest.raises(ValueError, match="above the largest amount"):
            q.memory_bytes(text)
