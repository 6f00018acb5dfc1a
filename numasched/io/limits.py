"""Limits on what one input may cost: file size, YAML depth, object counts, amplification.

Every reader refuses input beyond these limits with a one-line ``ValueError`` naming the file,
the place and the limit (never a ``MemoryError``, a ``RecursionError`` or a hang). The defaults
are sized for real clusters with a wide margin; a caller that needs more raises them:

- for one block of code, ``with limits.override(max_replicas=1_000_000): ...`` (a context
  variable, so it holds for that thread or task only);
- for the whole process, ``limits.configure(max_file_bytes=256 << 20)``;
- from the shell, ``NUMASCHED_LIMITS="max_replicas=1000000,max_file_bytes=256Mi"`` (read once,
  at import; values are plain integers or Kubernetes quantities such as ``256Mi``).

``current()`` is the limits in force. Amounts of CPU and memory have fixed bounds instead: the
array API's ``numasched.codes`` limits (``MAX_REQUEST_AMOUNT`` per request,
``MAX_NODE_AMOUNT`` per NUMA node), which no setting can raise.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
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


def _from_environment(text: str | None) -> Limits:
    if not text:
        return Limits()
    from .quantity import count

    changes = {}
    known = {f.name for f in dataclasses.fields(Limits)}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise ValueError(f"{ENVIRONMENT_VARIABLE}: {part.strip()!r} is not NAME=VALUE with "
                             f"NAME one of {', '.join(sorted(known))}")
        changes[name] = count(value.strip(), f"{ENVIRONMENT_VARIABLE}: {name}")
    return Limits(**changes)


_DEFAULT = [_from_environment(os.environ.get(ENVIRONMENT_VARIABLE))]
_CURRENT: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("numasched_limits",
                                                                        default=None)


def current() -> Limits:
    """The limits in force in this thread or task."""
    value = _CURRENT.get()
    return value if value is not None else _DEFAULT[0]


def configure(**changes) -> Limits:
    """Change the process-wide defaults (unknown names raise ``TypeError``); returns them."""
    _DEFAULT[0] = dataclasses.replace(_DEFAULT[0], **changes)
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
