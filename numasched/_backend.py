"""Backend discovery: the compiled Cython kernel, else the Numba kernel, saying so loudly.

``auto`` picks the first of cython, numba, reference that can run. The Numba backend gives the
same placements (tested bit for bit) but pays a JIT compile on first use in a fresh cache; the
first compile in a process says so once on stderr (``numasched.kernels.config``), and
``warmup()`` pays it ahead of time. Nothing here imports Numba until a Numba kernel is used:
``import numasched`` and the Cython paths never load it.

``NUMASCHED_REQUIRE_EXTENSION=1`` turns a missing extension into an ImportError (CI sets it), so
a broken build can never pass as a slow one.
"""
from __future__ import annotations

import os
import warnings

from .codes import MODE_BEST_EFFORT, WIDTH_RANK


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


def _numba_kernels(asked: str):
    """``numasched.kernels.placement``, with the reason a compile notice would give: the caller
    asked for ``asked`` (a backend name) and it resolved to Numba."""
    from .kernels import config, placement

    config.compile_reason("backend='numba' was asked for" if asked == "numba" else
                          f"backend={asked!r} runs on Numba because numasched._core (the Cython "
                          f"kernel) is not built; {BUILD_FIX}")
    return placement


def _run_numba(cluster, requests, modes, compiled, arrays):
    _run_compiled("Numba", _numba_kernels(_run_numba.asked), cluster, requests, modes, compiled,
                  arrays)


_run_reference.backend_name = "reference"
_run_cython.backend_name = "cython"
_run_numba.backend_name = "numba"

BACKENDS = ("auto", "cython", "numba", "reference")


def available() -> list[str]:
    """Backends that can run here, fastest first."""
    return (["cython"] if _core is not None else []) + ["numba", "reference"]


def resolve(name: str) -> str:
    """The backend ``name`` runs on: auto -> the fastest available; refuses unknown or unbuilt
    ones with a ValueError."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(map(repr, BACKENDS))}")
    if name == "auto":
        name = available()[0]
    if name == "cython" and _core is None:
        raise ValueError(f"backend 'cython' is not available: the extension is not built; {BUILD_FIX}")
    return name


def get(name: str):
    resolved = resolve(name)
    if resolved == "cython":
        return _run_cython
    if resolved == "numba":
        _run_numba.asked = name
        return _run_numba
    return _run_reference


_run_numba.asked = "numba"


# ---------------------------------------------------------------------------------------------
# Scoring (numasched.embedding): one kernel per backend with the signature of score_into.
# ---------------------------------------------------------------------------------------------
def _score_reference(node_cpu, node_mem, distance, schedulable, free_cpu, free_mem, cpu, mem,
                     mode, required_host, policy, node_choice, cpu_weight, mem_weight, out_rank,
                     out_nodes, out_ok):
    """score_into in plain Python on the reference's own Host (the specification): each host
    alone, ``Host.allocation`` for where the request goes and ``Host.score`` for how good."""
    from .kernels.reference import Host

    hosts = node_cpu.shape[0]
    for h in range(hosts):
        dist = distance[h] if distance.shape[0] > 1 else distance[0]
        for i in range(cpu.shape[0]):
            out_ok[i, h], out_rank[i, h], out_nodes[i, h] = 0, 0, 0
            if not schedulable[h] or required_host[i] not in (-1, h):
                continue
            host = Host(node_cpu[h].tolist(), node_mem[h].tolist(), free_cpu[h].tolist(),
                        free_mem[h].tolist(), dist.tolist(), True)
            c, m, md = int(cpu[i]), int(mem[i]), int(mode[i])
            found = host.allocation(c, m, md, node_choice)
            if found is None:
                continue
            width, nodes = found[0], found[1]
            score = host.score(policy, c, m, cpu_weight, mem_weight)
            out_ok[i, h] = 1
            out_rank[i, h] = score - width * WIDTH_RANK if md == MODE_BEST_EFFORT else score
            out_nodes[i, h] = sum(1 << k for k in nodes)
    return 0


def score_kernel(name: str):
    """(resolved name, score_into, its status messages) for backend ``name``: the Cython kernel,
    the Numba kernel (parallel over host chunks, ``numba.set_num_threads``) or the reference."""
    resolved = resolve(name)
    if resolved == "cython":
        return resolved, _core.score_into, _core.STATUS_MESSAGES
    if resolved == "numba":
        kernels = _numba_kernels(name)
        return resolved, kernels.score_into, kernels.STATUS_MESSAGES
    return resolved, _score_reference, {}


def warmup(backend: str = "auto", *, fill_order: bool = False) -> str:
    """Compile or load everything ``backend`` runs, now, so no later call waits for it.

    ``place()``, ``filter_hosts``, ``score_hosts`` and ``score_batch`` on that backend answer at
    full speed afterwards. The Cython backend has nothing to compile (this only checks that it
    runs); on Numba the first call in a fresh cache compiles for tens of seconds (said once on
    stderr) and later processes load the machine code from the cache. ``fill_order=True`` also
    prepares ``order="fill"``, whose request order is a Numba kernel on every backend. Returns
    the backend that ran (``auto`` resolved). Safe to call from any thread, any number of times.
    """
    from .api import Cluster, Requests, place
    from .embedding import score_batch

    resolved = resolve(backend)
    if resolved == "numba":
        _numba_kernels(backend)
    cluster = Cluster([[1000, 1000]], [[1 << 20, 1 << 20]])
    requests = Requests([500, 1500], [1 << 19, 1 << 20])
    orders = ("given", "fill") if fill_order else ("given",)
    for order in orders:
        place(cluster, requests, backend=resolved, order=order)
    score_batch(cluster, requests, backend=resolved)
    return resolved


__all__ = ["available", "get", "resolve", "score_kernel", "warmup", "BACKENDS"]
