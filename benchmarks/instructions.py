"""Instructions the Cython kernel executes per placement, per host score, counted by callgrind.

One command, from the repository root (needs valgrind):

    python benchmarks/instructions.py                              # 100k requests on 10k hosts
    python benchmarks/instructions.py --requests 20000 --hosts 2000 --policies balanced

Wall and CPU time on a shared machine vary by 15-20 % from run to run; the number of
instructions a call executes varies by less than 0.1 % (the allocator's work in the kernel's
array set-up is counted too), so it is the yardstick for comparing two versions of a kernel (run
this on each, same arguments). For each score a child process under
``valgrind --tool=callgrind`` builds the throughput benchmark's instance (half Azure-mix VMs,
half containers, on demo hosts of 2 NUMA nodes x 32 cores x 256 GiB) and calls
``place(backend="cython")`` once; only the instructions inside the kernel's ``place_into`` are
counted (``--toggle-collect``), so the Python around it and the instance building are not.
Instructions are not time: a cache miss or a division costs one instruction and many cycles, so
a change that saves instructions may save no time (``benchmarks/throughput.py`` says). The Numba
kernel is not counted: its machine code has no stable symbol to toggle on. ``--json`` keeps the
numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POLICIES = ("first-fit", "best-fit", "worst-fit", "balanced", "dot-product")
# The Cython function place_into (its C name carries the module's mangling).
KERNEL_SYMBOL = "__pyx_pf_9numasched_5_core_*place_into*"

CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {benchmarks!r})
    import numasched
    from _instances import mixed_instance
    cluster, requests = mixed_instance({requests}, {hosts})
    p = numasched.place(cluster, requests, backend="cython", policy={policy!r}, numa={numa!r})
    print(int(p.placed.sum()))
""")


def callgrind_total(out_file: Path) -> int:
    """The instruction total (event Ir) that callgrind wrote in ``out_file``."""
    for line in out_file.read_text().splitlines():
        match = re.match(r"(?:summary|totals):\s+(\d+)", line)
        if match:
            return int(match.group(1))
    raise ValueError(f"{out_file}: no 'summary:' or 'totals:' line (not a callgrind output?)")


def valgrind_version() -> str:
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()


def count(policy: str, requests: int, hosts: int, numa: str) -> dict:
    """Instructions inside place_into for one call, and how many requests it placed."""
    code = CHILD.format(benchmarks=str(HERE), requests=requests, hosts=hosts, policy=policy,
                        numa=numa)
    with tempfile.TemporaryDirectory(prefix="numasched-callgrind-") as tmp:
        out_file = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
             f"--toggle-collect={KERNEL_SYMBOL}", sys.executable, "-c", code],
            capture_output=True, text=True, env=env, cwd=str(REPO), timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"the {policy} child failed under valgrind:\n{proc.stderr[-3000:]}")
        instructions = callgrind_total(out_file)
    placed = int(proc.stdout.strip().splitlines()[-1])
    if instructions == 0:
        raise SystemExit(f"callgrind counted nothing inside {KERNEL_SYMBOL}: is numasched._core "
                         "built (pip install -e .)?")
    return {"instructions": instructions, "placed": placed,
            "per_placement": instructions / max(placed, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="comma-separated host scores (default: all five)")
    parser.add_argument("--numa", default="restricted")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    policies = args.policies.split(",")
    for policy in policies:
        if policy not in POLICIES:
            parser.error(f"--policies: unknown host score {policy!r}; known: {', '.join(POLICIES)}")
    from throughput import git_commit   # the same commit stamp as the throughput runs

    results = {"requests": args.requests, "hosts": args.hosts, "numa": args.numa,
               "commit": git_commit(), "valgrind": valgrind_version(), "rows": {}}
    print(f"{'score':<12} {'instructions':>15} {'placed':>9} {'per placement':>14}")
    for policy in policies:
        row = count(policy, args.requests, args.hosts, args.numa)
        results["rows"][policy] = row
        print(f"{policy:<12} {row['instructions']:>15,} {row['placed']:>9,} "
              f"{row['per_placement']:>14,.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
