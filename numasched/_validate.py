"""Input coercion at the API boundary: every array a kernel sees passes through here.

Each helper returns a fresh, C-contiguous array of a fixed dtype (never the caller's own object,
so a kernel may write into it) or raises ``ValueError`` naming the field and the bad value.
"""
from __future__ import annotations

import numpy as np


def int_array(value, field: str, *, ndim: int | tuple[int, ...], lo: int | None = None,
              hi: int | None = None, dtype=np.int64, allow_bool: bool = False) -> np.ndarray:
    """Coerce ``value`` to a new integer array; floats are accepted only when whole numbers."""
    arr = np.asarray(value)
    if arr.dtype.kind == "O":  # e.g. a list mixing Python ints and floats, or holding None
        try:
            arr = np.array(arr.tolist(), dtype=float if _has_float(arr) else np.int64)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{field} must hold integers, got {value!r:.80}") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"{field} must be {want}, got shape {arr.shape}")
    if arr.dtype == np.bool_ and not allow_bool:
        raise ValueError(f"{field} must hold integers, got booleans")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            bad = arr[~np.isfinite(arr)].flat[0]
            raise ValueError(f"{field} must be finite integers, found {bad}")
        whole = arr == np.floor(arr)
        if not np.all(whole):
            raise ValueError(f"{field} must be whole numbers, found {arr[~whole].flat[0]!r}")
        if arr.size and np.max(np.abs(arr)) >= 2.0**62:
            raise ValueError(f"{field} holds a value too large for int64: {np.max(np.abs(arr))!r}")
    elif arr.dtype.kind == "u":
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{field} holds a value too large for int64: {arr.max()!r}")
    elif arr.dtype.kind not in "ib":
        raise ValueError(f"{field} must hold integers, got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.int64, order="C", copy=True)
    if lo is not None and out.size and out.min() < lo:
        bad = out[out < lo].flat[0]
        raise ValueError(f"{field} must be >= {lo}, found {bad}")
    if hi is not None and out.size and out.max() > hi:
        bad = out[out > hi].flat[0]
        raise ValueError(f"{field} must be <= {hi}, found {bad}")
    return out if out.dtype == dtype else np.ascontiguousarray(out.astype(dtype))


def _has_float(arr: np.ndarray) -> bool:
    return any(isinstance(x, float) for x in arr.flat)


def same_length(field: str, arr: np.ndarray, n: int, reference_field: str) -> None:
    if arr.shape[0] != n:
        raise ValueError(f"{field} has length {arr.shape[0]}, but {reference_field} has {n}")
