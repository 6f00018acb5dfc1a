"""Backend discovery: the compiled Cython kernel, else the Numba kernel, saying so loudly.

``auto`` picks the first of cython, numba, reference that can run. The Numba backend gives the
same placements (tested bit for bit) but pays a JIT compile on first use in a fresh cache.

``NUMASCHED_REQUIRE_EXTENSION=1`` turns a missing extension into an ImportError (CI sets it), so
a broken build can never pass as a slow one.
"""
from __future__ import annotations

import os
import warnings


BUILD_FIX = ('build it with `pip install -e ".[dev]"` (or `python setup.py build_ext --inplace`) '
             "from the numasched source tree")

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - exercised by the fallback test in a subprocess
    _core = None
    if os.environ.get("NUMASCHED_REQUIRE_EXTENSION") == "1":
        raise ImportError(f"numasched._core (the Cython kernel) is not built: {exc}; {BUILD_FIX}") from exc
    warnings.warn(
        f"numasched._core (the Cython kernel) is not built, so numasched falls back to the Numba "
        f"backend (same placements, JIT-compiled on first use); {BUILD_FIX}",
        RuntimeWarning,
        stacklevel=2,
    )


def _run_reference(cluster, requests, modes, compiled, arrays):
    from .kernels.reference import place_reference

    result = place_reference(
        {"node_cpu": cluster.node_cpu, "node_mem": cluster.node_mem,
         "free_cpu": cluster.free_cpu, "free_mem": cluster.free_mem,
         "distance": cluster.distance, "schedulable": cluster.schedulable},
        {"cpu": requests.cpu, "mem": requests.mem, "mode": modes, "vnuma": requests.vnuma,
         "priority": requests.priority, "required_host": requests.required_host},
        compiled.score, compiled.node, compiled.order, compiled.cpu_weight, compiled.mem_weight,
    )
    for name, value in result.items():
        arrays[name][...] = value


def _run_compiled(name, module, cluster, requests, modes, compiled, arrays):
    """Call ``module.place_into`` (the Cython or the Numba kernel: one signature) and turn a
    non-zero status into an exception."""
    from .api import request_order

    status = module.place_into(
        cluster.node_cpu, cluster.node_mem, cluster.distance, cluster.schedulable,
        requests.cpu, requests.mem, modes, requests.required_host,
        request_order(cluster, requests, compiled.order), compiled.score, compiled.node,
        compiled.cpu_weight, compiled.mem_weight, arrays["free_cpu"], arrays["free_mem"],
        arrays["host"], arrays["cpu_by_node"], arrays["mem_by_node"], arrays["nodes"],
        arrays["reason"],
    )
    if status != 0:
        raise RuntimeError(f"the {name} kernel failed with status {status} "
                           f"({module.STATUS_MESSAGES.get(status, 'unknown')}); this is a numasched bug")


def _run_cython(cluster, requests, modes, compiled, arrays):
    _run_compiled("Cython", _core, cluster, requests, modes, compiled, arrays)


def _run_numba(cluster, requests, modes, compiled, arrays):
    from .kernels import placement

    _run_compiled("Numba", placement, cluster, requests, modes, compiled, arrays)


_run_reference.backend_name = "reference"
_run_cython.backend_name = "cython"
_run_numba.backend_name = "numba"

BACKENDS = ("auto", "cython", "numba", "reference")


def available() -> list[str]:
    """Backends that can run here, fastest first."""
    return (["cython"] if _core is not None else []) + ["numba", "reference"]


def get(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(map(repr, BACKENDS))}")
    if name == "auto":
        name = available()[0]
    if name == "cython":
        if _core is None:
            raise ValueError(f"backend 'cython' is not available: the extension is not built; {BUILD_FIX}")
        return _run_cython
    if name == "numba":
        return _run_numba
    return _run_reference


__all__ = ["available", "get", "BACKENDS"]
