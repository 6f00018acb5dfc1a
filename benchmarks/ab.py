"""Two versions of the Cython kernel, timed side by side in one process.

    git show HEAD~1:numasched/_core.pyx > /tmp/before.pyx
    python benchmarks/ab.py /tmp/before.pyx numasched/_core.pyx --policy dot-product

A shared machine's speed drifts by 10-20 % from one minute to the next, so two runs of
throughput.py minutes apart cannot tell a 3 % change from drift, and instruction counts
(instructions.py) do not see cache misses or mispredicted branches. This compiles each .pyx into
a module of its own (setup.py's directives and compiler flags, in a temporary directory),
captures the arguments of one ``numasched.place`` call on the throughput instance, and calls the
two modules' ``place_into`` on fresh copies of them in turn (A B, B A, A B, ...), so both see
the same drift. It prints each one's median CPU time and the median of the per-round ratios
B / A, and fails if the two placed any request differently.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _instances import mixed_instance  # noqa: E402

import numasched  # noqa: E402

FREE = (13, 14)   # place_into's arguments free_cpu and free_mem, which it updates in place
OUTPUTS = 15      # ... and its outputs from here on, out_host first


def build_settings() -> dict:
    """The Cython directives, macros and compiler flags setup.py builds numasched._core with,
    read from its source (DEBUG off)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    settings = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DIRECTIVES"
                                                for t in node.targets):
            settings["directives"] = eval(compile(ast.Expression(node.value), "setup.py", "eval"),
                                          {"DEBUG": False})
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Extension":
            for kw in node.keywords:
                if kw.arg in ("define_macros", "extra_compile_args"):
                    settings[kw.arg] = ast.literal_eval(kw.value)
    missing = {"directives", "define_macros", "extra_compile_args"} - settings.keys()
    if missing:
        raise RuntimeError(f"setup.py no longer shows {sorted(missing)} where ab.py reads them")
    return settings


def build(pyx: Path, name: str, where: Path, settings: dict) -> None:
    """Compile ``pyx`` as the extension module ``name`` in ``where``."""
    shutil.copyfile(pyx, where / f"{name}.pyx")
    script = f"""
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
setup(ext_modules=cythonize(
    [Extension({name!r}, [{name + '.pyx'!r}], include_dirs=[np.get_include()],
               define_macros={settings['define_macros']!r},
               extra_compile_args={settings['extra_compile_args']!r})],
    compiler_directives={settings['directives']!r}, quiet=True),
    script_args=["build_ext", "--inplace"])
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=where, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building {pyx} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


def captured_call(policy: str, numa: str, n_requests: int, n_hosts: int) -> tuple:
    """The arguments numasched.place passes to the Cython kernel on the throughput instance,
    copied before the call (so the free capacity is the instance's, not what is left after)."""
    from numasched import _core

    cluster, requests = mixed_instance(n_requests, n_hosts)
    seen = []
    original = _core.place_into

    def spy(*args):
        seen.append([np.array(a) if isinstance(a, np.ndarray) else a for a in args])
        return original(*args)

    _core.place_into = spy
    try:
        numasched.place(cluster, requests, backend="cython", policy=policy, numa=numa)
    finally:
        _core.place_into = original
    if len(seen) != 1:
        raise SystemExit(f"expected one kernel call, saw {len(seen)}")
    return tuple(seen[0])


def timed(module, args: tuple) -> tuple[float, np.ndarray]:
    """CPU seconds of one place_into on fresh copies of the arguments it writes; its hosts."""
    fresh = [a.copy() if k in FREE or k >= OUTPUTS else a for k, a in enumerate(args)]
    start = time.process_time()
    status = module.place_into(*fresh)
    spent = time.process_time() - start
    if status != 0:
        raise SystemExit(f"{module.__name__}.place_into returned status {status}")
    return spent, fresh[OUTPUTS]


def compare(module_a, module_b, call: tuple, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """CPU seconds of ``rounds`` calls of each module's place_into on ``call``, alternating
    A B, B A, ...; SystemExit if the two place any request on different hosts."""
    modules = (module_a, module_b)
    times: list[list[float]] = [[], []]
    hosts = [None, None]
    for r in range(rounds):
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):
            spent, hosts[k] = timed(modules[k], call)
            times[k].append(spent)
        if not np.array_equal(hosts[0], hosts[1]):
            raise SystemExit("A and B placed the requests differently")
    return np.array(times[0]), np.array(times[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="the first .pyx (A, e.g. the version before)")
    parser.add_argument("b", type=Path, help="the second .pyx (B)")
    parser.add_argument("--policy", default="dot-product")
    parser.add_argument("--numa", default="restricted")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15, help="calls of each (15 or more "
                        "resolve a 3 %% change here)")
    args = parser.parse_args(argv)
    for pyx in (args.a, args.b):
        if not pyx.is_file():
            parser.error(f"{pyx}: no such file")
    if "cython" not in numasched.available_backends():
        raise SystemExit("the Cython kernel is not built: pip install -e .")
    settings = build_settings()
    call = captured_call(args.policy, args.numa, args.requests, args.hosts)
    with tempfile.TemporaryDirectory(prefix="numasched-ab-") as tmp:
        where = Path(tmp)
        for pyx, name in ((args.a, "ab_a"), (args.b, "ab_b")):
            build(pyx, name, where, settings)
        sys.path.insert(0, tmp)
        a, b = compare(importlib.import_module("ab_a"), importlib.import_module("ab_b"), call,
                       args.rounds)
    print(f"{args.policy}, {args.numa}, {args.requests:,} requests on {args.hosts:,} hosts, "
          f"{args.rounds} calls each, alternating; CPU time")
    print(f"A {args.a}: median {np.median(a) * 1e3:.1f} ms (min {a.min() * 1e3:.1f})")
    print(f"B {args.b}: median {np.median(b) * 1e3:.1f} ms (min {b.min() * 1e3:.1f})")
    print(f"B / A: {np.median(b / a):.3f} (median of the per-round ratios), same placements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
