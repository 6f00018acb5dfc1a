"""Backend plumbing: the compiled kernel's codes, the loud fallback, and the strict mode."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import numasched
from numasched import _backend, codes

REPO = Path(__file__).resolve().parents[1]

needs_core = pytest.mark.skipif(_backend._core is None, reason="the Cython kernel is not built")


@needs_core
def test_core_codes_agree_with_codes_module():
    core = _backend._core.CODES
    prefixes = ("MODE_", "POLICY_", "NODE_", "REASON_")
    expected = {name: getattr(codes, name) for name in dir(codes)
                if name.startswith(prefixes) and isinstance(getattr(codes, name), int)}
    expected.pop("MODE_DEFAULT")  # resolved by the wrapper, never seen by a kernel
    expected["FIXED_SHIFT"] = codes.FIXED_SHIFT
    assert set(core) == set(expected), set(core) ^ set(expected)
    for name, value in expected.items():
        assert core[name] == value, name


def test_code_tables_are_consistent():
    assert codes.NUMA_MODES == {"none": codes.MODE_NONE, "single-numa-node": codes.MODE_SINGLE,
                                "restricted": codes.MODE_RESTRICTED,
                                "best-effort": codes.MODE_BEST_EFFORT}
    assert codes.HOST_POLICIES == {"first-fit": codes.POLICY_FIRST_FIT,
                                   "best-fit": codes.POLICY_BEST_FIT,
                                   "worst-fit": codes.POLICY_WORST_FIT,
                                   "balanced": codes.POLICY_BALANCED,
                                   "dot-product": codes.POLICY_DOT_PRODUCT}
    assert codes.NODE_CHOICES == {"pack": codes.NODE_PACK, "spread": codes.NODE_SPREAD}
    assert codes.ORDERS == {"decreasing": codes.ORDER_DECREASING, "given": codes.ORDER_GIVEN,
                            "fill": codes.ORDER_FILL}
    # reasons numbered in DESIGN order
    assert [codes.REASONS[c] for c in sorted(codes.REASONS)] == [
        "placed", "too-large", "host-constraint", "insufficient-cpu", "insufficient-memory",
        "no-numa-fit"]
    assert (codes.PLACED, codes.REASON_TOO_LARGE, codes.REASON_CONSTRAINT, codes.REASON_NO_CPU,
            codes.REASON_NO_MEMORY, codes.REASON_NO_NUMA_FIT) == (0, 1, 2, 3, 4, 5)
    assert set(codes.REASON_MESSAGES) == set(codes.REASONS)
    assert codes.FIXED_ONE == 1 << codes.FIXED_SHIFT == 65536
    assert codes.MAX_NODES == 64


def test_available_backends():
    available = numasched.available_backends()
    assert available[-1] == "reference"
    assert len(set(available)) == len(available)
    if _backend._core is not None:
        assert available[0] == "cython"
    for name in available:
        assert _backend.get(name).backend_name == name


# A meta-path finder that makes numasched._core unimportable, installed before numasched is.
HIDE_CORE = textwrap.dedent("""
    import sys, importlib.abc

    class HideCore(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "numasched._core":
                raise ImportError("numasched._core hidden by the test")
            return None

    sys.meta_path.insert(0, HideCore())
""")

FALLBACK = HIDE_CORE + textwrap.dedent("""
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numasched
    import numasched._backend as backend
    cluster = numasched.Cluster.uniform(2, 2, 32000, 256 * 2**30)
    requests = numasched.Requests([48000, 4000], [64 * 2**30, 2**30])
    p = numasched.place(cluster, requests)
    try:
        numasched.place(cluster, requests, backend="cython")
        cython_error = None
    except ValueError as exc:
        cython_error = str(exc)
    print(json.dumps({
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
        "core": backend._core is not None,
        "available": numasched.available_backends(),
        "backend": p.settings["backend"],
        "host": p.host.tolist(),
        "nodes": [int(x) for x in p.nodes],
        "cpu_by_node": p.cpu_by_node.tolist(),
        "cython_error": cython_error,
    }))
""")


def _run(code: str, **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMASCHED_REQUIRE_EXTENSION"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=300)  # a cold Numba compile: ~1 min


@pytest.mark.numba   # its process places on Numba: after the session's warmup, from the cache
def test_missing_extension_falls_back_loudly():
    proc = _run(FALLBACK)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["core"] is False
    runtime = [msg for cat, msg in out["warnings"] if cat == "RuntimeWarning"]
    assert runtime, f"no RuntimeWarning on import: {out['warnings']}"
    assert any("numasched._core" in m and "pip install -e" in m and "Numba" in m
               for m in runtime), runtime
    assert out["available"] == ["numba", "reference"]
    assert out["backend"] == "numba"
    assert out["host"] == [0, 0]
    assert out["nodes"] == [0b11, 0b01]
    assert out["cpu_by_node"] == [[24000, 24000], [4000, 0]]
    assert out["cython_error"] and "not available" in out["cython_error"]


def test_required_extension_turns_the_fallback_into_an_import_error():
    code = HIDE_CORE + textwrap.dedent("""
        try:
            import numasched
        except ImportError as exc:
            print("IMPORT-ERROR:", exc)
        else:
            print("IMPORTED")
    """)
    proc = _run(code, NUMASCHED_REQUIRE_EXTENSION="1")
    assert proc.returncode == 0, proc.stderr
    assert "IMPORT-ERROR:" in proc.stdout, proc.stdout
    assert "numasched._core" in proc.stdout and "pip install -e" in proc.stdout


@needs_core
def test_required_extension_with_the_extension_built_imports_quietly():
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("error")
        import numasched
        print(numasched.available_backends()[0])
    """)
    proc = _run(code, NUMASCHED_REQUIRE_EXTENSION="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cython"
