"""Numba compilation flags for every numasched kernel: the one place they are set.

Decorators never spell flags out; they write ``@njit(**config.NUMBA_JIT_KWARGS)`` (serial
kernels and the helpers they call) or ``@njit(**config.NUMBA_PARALLEL_KWARGS)`` (kernels with a
``prange`` loop), so changing a flag here changes it everywhere.

- ``nogil``: kernels release the GIL, like the Cython kernel, so embedders can run them from
  threads.
- ``cache``: compiled machine code is written next to the source (``__pycache__``, or under
  ``NUMBA_CACHE_DIR``) so only the first process pays the compile.
- ``fastmath``: off. The kernels are integer code whose results must be bit-for-bit those of the
  reference; no reassociation, ever.
- ``boundscheck``: off, as in the Cython build. The drivers check every shape before the loop.
  To hunt an indexing bug run with ``NUMBA_BOUNDSCHECK=1`` *and* a fresh ``NUMBA_CACHE_DIR``
  (the cache does not key on this flag), or with ``NUMBA_DISABLE_JIT=1`` (plain Python, numpy
  indexing checks bounds).
- ``error_model="numpy"``: integer division by zero does not raise (the Cython build uses
  ``cdivision``). Every division in the kernels has a divisor known to be positive, so this only
  removes a branch per division; it never changes a result.

``NUMBA_INLINE_KWARGS`` (the serial flags plus ``inline="always"``) is for the helpers on the
per-host path: ``fx``, ``host_score`` and the node-set search (``fit_width``, ``min_nodes``,
``set_search``). A Numba call that takes arrays pays an atomic incref/decref pair per array
argument; with the search as calls, first-fit + restricted (a NUMA check on nearly every host
it visits) ran 5x slower than Cython, inlined 3x, at the price of a longer cold compile (about
16 s instead of 7 s on 2 cores). The whole per-request path of the placement loop is inlined
too (the host index's search and updates, the class moves, ``commit``), on borrowed arrays
without reference counts: see the docstring of ``placement.py``.

The cache trap
--------------
Numba's ``cache=True`` keys a cached kernel on *its own* source file (the file's timestamp and
size, and the function's bytecode). Helpers a kernel calls are compiled into the kernel's machine
code, but a change in a helper that lives in *another* file does not invalidate the kernel's cache
entry: the next process silently runs the stale helper. Hence every helper a cached kernel calls
lives in the same file as the kernel (``placement.py`` holds the whole placement loop). Module
globals are frozen into the machine code as constants and are not part of the key either: the
codes imported from ``numasched.codes`` may only ever be appended to, never renumbered (the rule
of that module), and a change to them must come with a touch of the kernel file.
"""
from __future__ import annotations

import sys
import threading

from numba.core import event

NUMBA_JIT_KWARGS = {
    "nogil": True,
    "cache": True,
    "fastmath": False,
    "boundscheck": False,
    "error_model": "numpy",
}

NUMBA_PARALLEL_KWARGS = {**NUMBA_JIT_KWARGS, "parallel": True}

NUMBA_INLINE_KWARGS = {**NUMBA_JIT_KWARGS, "inline": "always"}


# ---------------------------------------------------------------------------------------------
# The compile notice. A cold compile of the placement kernels takes tens of seconds, and a
# caller that embeds numasched (or kube-scheduler waiting on the extender) would otherwise see
# nothing but silence. Numba's "numba:compile" event fires only when machine code is really
# compiled (a cache hit loads without it), so the first such event for a numasched kernel
# prints one line on stderr, once per process. Callers that choose Numba say why with
# ``compile_reason``; kernels used on every backend (the fill order, the metrics, refine) get
# the generic reason.
# ---------------------------------------------------------------------------------------------
COMPILE_ESTIMATE = "from a few seconds up to about a minute"
DEFAULT_REASON = "this part of numasched runs on Numba on every backend"
_notice = {"said": False, "reason": DEFAULT_REASON}
_notice_lock = threading.Lock()


def compile_reason(reason: str) -> None:
    """Say why the next Numba kernels run (shown by the compile notice, if one is printed)."""
    _notice["reason"] = reason


def notice_text(kernel: str, reason: str) -> str:
    return (f"numasched: compiling the Numba kernel {kernel} ({reason}); this takes "
            f"{COMPILE_ESTIMATE}, once: the machine code is then cached on disk. "
            f"numasched.warmup(backend=...) compiles ahead of time.\n")


class _CompileNotice(event.Listener):
    """Prints the notice at the first compile of a numasched kernel in this process."""

    def on_start(self, ev):
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        module = getattr(func, "__module__", "") or ""
        if not module.startswith("numasched."):
            return
        with _notice_lock:
            if _notice["said"]:
                return
            _notice["said"] = True
        sys.stderr.write(notice_text(f"{module}.{func.__qualname__}", _notice["reason"]))
        sys.stderr.flush()

    def on_end(self, ev):
        pass


event.register("numba:compile", _CompileNotice())

__all__ = ["NUMBA_INLINE_KWARGS", "NUMBA_JIT_KWARGS", "NUMBA_PARALLEL_KWARGS", "compile_reason",
           "notice_text"]
