"""The benchmark tools that the docs' kernel figures come from."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import numasched

ROOT = Path(__file__).resolve().parents[1]


def test_instruction_counts_are_the_same_every_run(tmp_path):
    # benchmarks/instructions.py is the steady yardstick for kernel changes: callgrind counts
    # only the Cython kernel's instructions, which depend on the instance (and, by a few hundred,
    # on the allocator's state in the kernel's array set-up), so two runs agree to 0.1 %; a
    # noisy machine changes CPU times by 15-20 %.
    if shutil.which("valgrind") is None:
        message = "valgrind is not installed (apt-get install valgrind)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if "cython" not in numasched.available_backends():
        pytest.skip("the Cython kernel is not built")
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}.json"
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "instructions.py"), "--requests", "400",
             "--hosts", "40", "--policies", "balanced", "--json", str(out)],
            capture_output=True, text=True, cwd=str(ROOT), timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(out.read_text())["rows"]["balanced"])
    assert runs[0]["placed"] > 0
    assert runs[0]["instructions"] > 1000 * runs[0]["placed"]
    assert runs[0]["placed"] == runs[1]["placed"]
    assert abs(runs[0]["instructions"] - runs[1]["instructions"]) < 1e-3 * runs[0]["instructions"]


def test_instruction_counts_refuse_an_unknown_score():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "instructions.py"), "--policies", "fastest"],
        capture_output=True, text=True, cwd=str(ROOT), timeout=120)
    assert proc.returncode == 2
    assert "--policies: unknown host score 'fastest'" in proc.stderr or "valgrind" in proc.stderr


def _ab():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import ab

    return ab


def test_ab_builds_with_the_settings_of_setup_py():
    """benchmarks/ab.py compiles each version as setup.py compiles the kernel."""
    settings = _ab().build_settings()
    assert settings["directives"]["boundscheck"] is False
    assert settings["directives"]["cdivision"] is True
    assert "-O3" in settings["extra_compile_args"]


def test_ab_alternates_and_refuses_different_placements():
    """Both modules get fresh copies of the captured call, in turn; a module that places a
    request elsewhere stops the comparison."""
    if "cython" not in numasched.available_backends():
        pytest.skip("the Cython kernel is not built")
    from numasched import _core

    ab = _ab()
    call = ab.captured_call("best-fit", "restricted", 400, 40)
    a, b = ab.compare(_core, _core, call, 3)
    assert len(a) == len(b) == 3

    class Elsewhere:
        __name__ = "elsewhere"

        @staticmethod
        def place_into(*args):
            status = _core.place_into(*args)
            args[ab.OUTPUTS][0] += 1  # the first request on another host
            return status

    with pytest.raises(SystemExit, match="differently"):
        ab.compare(_core, Elsewhere, call, 1)
