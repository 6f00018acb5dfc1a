"""Kubernetes resource quantities: ``"500m"``, ``"1.5"``, ``"2Gi"``, ``"1G"``, ``"1e3"``.

One parser for every input format (manifests, NodeResourceTopology, inventories, quotas), with
the semantics of ``k8s.io/apimachinery/pkg/api/resource``:

- a decimal number (optionally signed, with a fraction and an ``e``/``E`` exponent) followed by
  at most one suffix: binary ``Ki Mi Gi Ti Pi Ei`` (powers of 1024) or decimal
  ``n u m "" k M G T P E`` (powers of 1000);
- CPU becomes integer millicores, memory integer bytes; a fraction below one unit is rounded
  *up*, as ``Quantity.MilliValue()`` / ``Quantity.Value()`` do (``"0.1m"`` CPU is 1 millicore);
- plain ints are taken as already converted (millicores, bytes); floats are refused, because
  their binary rounding would silently change an amount.

Arithmetic is exact (``fractions.Fraction``), so ``"0.1"`` CPU is 100 millicores, never 99.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_SUFFIXES = {**_BINARY, **_DECIMAL}
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?([a-zA-Z]*)$")
_MAX_EXPONENT = 30  # 1e30 is already far above any real amount; larger is a typo


def parse(value, field: str) -> Fraction:
    """The exact value of a quantity in base units (cores, bytes); ``ValueError`` naming
    ``field`` and the value if it is not a valid Kubernetes quantity or is negative."""
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise ValueError(f"{field}: expected a Kubernetes quantity such as '500m' or '2Gi', got "
                         f"{value!r} ({type(value).__name__})")
    if isinstance(value, (int, np.integer)):
        number = Fraction(int(value))
    else:
        text = value.strip()
        match = _NUMBER.match(text)
        if not match or match.group(3) not in _SUFFIXES:
            unit = match.group(3) if match else None
            hint = (f"unknown unit {unit!r}; known: " + ", ".join(repr(s) for s in _SUFFIXES if s)
                    if unit else "not a number with an optional unit")
            raise ValueError(f"{field}: invalid quantity {value!r} ({hint})")
        mantissa, exponent, suffix = match.groups()
        if exponent is not None and suffix:
            raise ValueError(f"{field}: invalid quantity {value!r} (an exponent and a unit together)")
        power = int(exponent) if exponent is not None else 0
        if abs(power) > _MAX_EXPONENT:
            raise ValueError(f"{field}: invalid quantity {value!r} (exponent out of range)")
        number = Fraction(mantissa) * Fraction(10) ** power * _SUFFIXES[suffix]
    if number < 0:
        raise ValueError(f"{field}: quantity must not be negative, got {value!r}")
    return number


def cpu_millicores(value, field: str = "cpu") -> int:
    """CPU as integer millicores: strings are cores (``"2"`` = 2000, ``"500m"`` = 500); an int is
    taken as millicores already. Fractions of a millicore round up."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(parse(value, field))
    return math.ceil(parse(value, field) * 1000)


def memory_bytes(value, field: str = "memory") -> int:
    """Memory as integer bytes (``"2Gi"``, ``"1G"``, ``"267242119168"``); an int is bytes.
    Fractions of a byte round up."""
    return math.ceil(parse(value, field))


def count(value, field: str = "count") -> int:
    """An object count (``"10"``, ``"1k"``, ``10``); must be a whole number."""
    number = parse(value, field)
    if number.denominator != 1:
        raise ValueError(f"{field}: a count must be a whole number, got {value!r}")
    return int(number)


def format_cpu(millicores: int) -> str:
    """Millicores back to a short quantity: 2000 -> '2', 1500 -> '1500m'."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(num_bytes: int) -> str:
    """Bytes back to the largest exact binary unit: 2**31 -> '2Gi', 1000 -> '1000'."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if num_bytes and num_bytes % _BINARY[suffix] == 0:
            return f"{num_bytes // _BINARY[suffix]}{suffix}"
    return str(num_bytes)


__all__ = ["parse", "cpu_millicores", "memory_bytes", "count", "format_cpu", "format_memory"]
