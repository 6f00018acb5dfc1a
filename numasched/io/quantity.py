"""Kubernetes resource quantities: ``"500m"``, ``"1.5"``, ``"2Gi"``, ``"1G"``, ``"1e3"``.

One parser for every input format (manifests, NodeResourceTopology, inventories, quotas), with
the semantics of ``k8s.io/apimachinery/pkg/api/resource``:

- a decimal number of ASCII digits (optionally signed, with a fraction and an ``e``/``E``
  exponent) followed by at most one suffix: binary ``Ki Mi Gi Ti Pi Ei`` (powers of 1024) or
  decimal ``n u m "" k M G T P E`` (powers of 1000);
- CPU becomes integer millicores, memory integer bytes; a fraction below one unit is rounded
  *up*, as ``Quantity.MilliValue()`` / ``Quantity.Value()`` do (``"0.1m"`` CPU is 1 millicore);
- plain ints are taken as already converted (millicores, bytes); floats are refused, because
  their binary rounding would silently change an amount.

Bounds: a quantity is at most ``limits.current().max_quantity_chars`` characters (64 by
default) and its exponent at most 30, so parsing is linear in the input and never slow; the
converted amount is at most ``maximum`` (by default ``codes.MAX_REQUEST_AMOUNT``, the largest
request the array API takes; topology readers pass ``codes.MAX_NODE_AMOUNT``). Every error is a
``ValueError`` that starts with the field and quotes at most a short prefix of the value.

Arithmetic is exact (integers and ``fractions.Fraction``), so ``"0.1"`` CPU is 100 millicores,
never 99.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

from ..codes import MAX_REQUEST_AMOUNT
from . import limits

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_SUFFIXES = {**_BINARY, **_DECIMAL}
# Unambiguous, so a match (or a miss) costs one pass: sign, integer digits, fraction digits,
# exponent, suffix. ASCII only (re.ASCII keeps [0-9] and [A-Za-z] from matching other scripts).
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?([A-Za-z]*)", re.ASCII)
_MAX_EXPONENT = 30  # 1e30 is already far above any real amount; larger is a typo
_SHOWN = 40         # characters of a refused value quoted in an error
_MAX_DIGITS = 1000  # even with a raised length limit, int() of the digits stays cheap


def shown(value) -> str:
    """``repr`` of a refused value, cut to a short prefix (an error never echoes a long input)."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def parse(value, field: str) -> Fraction:
    """The exact value of a quantity in base units (cores, bytes); ``ValueError`` naming
    ``field`` and the value if it is not a valid Kubernetes quantity or is negative."""
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise ValueError(f"{field}: expected a Kubernetes quantity such as '500m' or '2Gi', got "
                         f"{shown(value)} ({type(value).__name__})")
    if isinstance(value, (int, np.integer)):
        number = Fraction(int(value))
        if number < 0:
            raise ValueError(f"{field}: quantity must not be negative, got {shown(value)}")
        return number
    longest = limits.current().max_quantity_chars
    if len(value) > longest:
        raise ValueError(f"{field}: invalid quantity {shown(value)} (longer than {longest} "
                         "characters)")
    if not value.isascii():
        raise ValueError(f"{field}: invalid quantity {shown(value)} (only ASCII digits, sign, "
                         "point, exponent and unit are allowed)")
    text = value.strip()
    match = _NUMBER.fullmatch(text)
    if not match or not (match.group(2) or match.group(3)):
        raise ValueError(f"{field}: invalid quantity {shown(value)} (not a number with an "
                         "optional unit)")
    sign, whole, fraction, exponent, suffix = match.groups()
    if suffix not in _SUFFIXES:
        known = ", ".join(repr(s) for s in _SUFFIXES if s)
        raise ValueError(f"{field}: invalid quantity {shown(value)} (unknown unit {suffix!r}; "
                         f"known: {known})")
    if exponent is not None and suffix:
        raise ValueError(f"{field}: invalid quantity {shown(value)} (an exponent and a unit "
                         "together)")
    power = int(exponent) if exponent is not None else 0
    if abs(power) > _MAX_EXPONENT:
        raise ValueError(f"{field}: invalid quantity {shown(value)} (exponent out of range)")
    fraction = fraction or ""
    if len(whole) + len(fraction) > _MAX_DIGITS:
        raise ValueError(f"{field}: invalid quantity {shown(value)} (more than {_MAX_DIGITS} "
                         "digits)")
    digits = int((whole or "0") + fraction)   # few digits: cheap
    number = Fraction(digits, 10 ** len(fraction)) * Fraction(10) ** power * _SUFFIXES[suffix]
    if sign == "-" and number != 0:
        raise ValueError(f"{field}: quantity must not be negative, got {shown(value)}")
    return number


def _bounded(amount: int, value, field: str, maximum: int, unit: str) -> int:
    if amount > maximum:
        raise ValueError(f"{field}: {shown(value)} is above the largest amount numasched "
                         f"accepts here ({maximum:,} {unit})")
    return amount


def cpu_millicores(value, field: str = "cpu", *, maximum: int = MAX_REQUEST_AMOUNT) -> int:
    """CPU as integer millicores: strings are cores (``"2"`` = 2000, ``"500m"`` = 500); an int is
    taken as millicores already. Fractions of a millicore round up. At most ``maximum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        amount = int(parse(value, field))
    else:
        amount = math.ceil(parse(value, field) * 1000)
    return _bounded(amount, value, field, maximum, "millicores")


def memory_bytes(value, field: str = "memory", *, maximum: int = MAX_REQUEST_AMOUNT) -> int:
    """Memory as integer bytes (``"2Gi"``, ``"1G"``, ``"267242119168"``); an int is bytes.
    Fractions of a byte round up. At most ``maximum``."""
    return _bounded(math.ceil(parse(value, field)), value, field, maximum, "bytes")


def count(value, field: str = "count", *, maximum: int = MAX_REQUEST_AMOUNT) -> int:
    """An object count (``"10"``, ``"1k"``, ``10``); a whole number, at most ``maximum``."""
    number = parse(value, field)
    if number.denominator != 1:
        raise ValueError(f"{field}: a count must be a whole number, got {shown(value)}")
    return _bounded(int(number), value, field, maximum, "")


def format_cpu(millicores: int) -> str:
    """Millicores back to a short quantity: 2000 -> '2', 1500 -> '1500m'."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(num_bytes: int) -> str:
    """Bytes back to the largest exact binary unit: 2**31 -> '2Gi', 1000 -> '1000'."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if num_bytes and num_bytes % _BINARY[suffix] == 0:
            return f"{num_bytes // _BINARY[suffix]}{suffix}"
    return str(num_bytes)


__all__ = ["parse", "shown", "cpu_millicores", "memory_bytes", "count", "format_cpu", "format_memory"]
