"""Limits on what one input may cost: file size, YAML depth, object counts, amplification.

Every reader refuses input beyond these limits with a one-line ``ValueError`` naming the file,
the place and the limit (never a ``MemoryError``, a ``RecursionError`` or a hang). The defaults
are sized for real clusters with a wide margin; a caller that needs more raises them:

- for one block of code, ``with limits.override(max_replicas=1_000_000): ...`` (a context
  variable, so it holds for that thread or task only);
- for the whole process, ``limits.configure(max_file_bytes=256 << 20)``;
- from the shell, ``NUMASCHED_LIMITS="max_replicas=1000000,max_file_bytes=256Mi"`` (read on
  first use; values are whole numbers, optionally with ``k M G Ki Mi Gi``).

``current()`` is the limits in force. Amounts of CPU and memory have fixed bounds instead: the
array API's ``numasched.codes`` limits (``MAX_REQUEST_AMOUNT`` per request,
``MAX_NODE_AMOUNT`` per NUMA node), which no setting can raise.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import re
from dataclasses import dataclass

ENVIRONMENT_VARIABLE = "NUMASCHED_LIMITS"


@dataclass(frozen=True)
class Limits:
    """The limits in force; every field is a positive integer."""

    max_file_bytes: int = 64 << 20      # bytes read from one input file
    max_yaml_depth: int = 64            # nesting of mappings and lists in one YAML document
    max_objects: int = 100_000          # documents and list items in one file
    max_replicas: int = 100_000         # replicas (parallelism, pool size) of one workload
    max_requests: int = 1_000_000       # requests one read expands into (all replicas)
    max_inventory_count: int = 100_000  # ``count`` of one inventory line
    max_hosts: int = 1_000_000          # hosts in one topology
    max_cpulist_cpus: int = 65_536      # CPUs in one sysfs cpulist (Linux allows 8,192)
    max_quantity_chars: int = 64        # characters in one quantity ("500m", "2Gi")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{f.name}: expected a positive integer, got {value!r}")


_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _from_environment(text: str | None) -> Limits:
    """Limits from ``NAME=VALUE,...`` (values: integers, optionally with k M G Ki Mi Gi)."""
    if not text:
        return Limits()
    changes = {}
    known = {f.name for f in dataclasses.fields(Limits)}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in known:
            raise ValueError(f"{ENVIRONMENT_VARIABLE}: {part.strip()!r:.60} is not NAME=VALUE "
                             f"with NAME one of {', '.join(sorted(known))}")
        match = re.fullmatch(r"([0-9]{1,15})([kMG]i?)?", value, re.ASCII)
        if not match or (match.group(2) or "") not in _SUFFIXES:
            raise ValueError(f"{ENVIRONMENT_VARIABLE}: {name}: expected a whole number such as "
                             f"100000 or 256Mi, got {value!r:.40}")
        changes[name] = int(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    return Limits(**changes)


_DEFAULT: list[Limits | None] = [None]   # read from the environment on first use
_CURRENT: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("numasched_limits",
                                                                        default=None)


def _defaults() -> Limits:
    if _DEFAULT[0] is None:
        _DEFAULT[0] = _from_environment(os.environ.get(ENVIRONMENT_VARIABLE))
    return _DEFAULT[0]


def current() -> Limits:
    """The limits in force in this thread or task. The first call reads
    ``NUMASCHED_LIMITS``; a malformed value is a ``ValueError`` there (one line)."""
    value = _CURRENT.get()
    return value if value is not None else _defaults()


def configure(**changes) -> Limits:
    """Change the process-wide defaults (unknown names raise ``TypeError``); returns them."""
    _DEFAULT[0] = dataclasses.replace(_defaults(), **changes)
    return _DEFAULT[0]


@contextlib.contextmanager
def override(**changes):
    """Limits changed for the code inside the ``with`` block (this thread or task only)."""
    token = _CURRENT.set(dataclasses.replace(current(), **changes))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


__all__ = ["Limits", "current", "configure", "override", "ENVIRONMENT_VARIABLE"]
