"""Time to the first embedding answer in a fresh process, per backend, side by side.

One command, from the repository root:

    python benchmarks/first_call.py                 # cython and numba, 1 round each
    python benchmarks/first_call.py --rounds 3      # median of 3 fresh processes per backend

For each backend, in one run, a new Python process with an EMPTY Numba cache (a new
``NUMBA_CACHE_DIR``) runs ``import numasched``, then ``filter_hosts`` and ``score_hosts``
(best-fit, restricted) for one pod on 1,000 demo hosts (2 NUMA nodes x 32 cores x 256 GiB), and
reports how long that took from the first line of its script (interpreter start-up excluded, the
import included) and whether it loaded Numba. This is what an embedding scheduler, or the
kube-scheduler extender at start, waits before its first answer. The answers of every backend
must agree (the command exits 1 otherwise). The ratio is numba's seconds over cython's, both
measured in this run. ``--json`` keeps the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = textwrap.dedent("""
    import time
    start = time.perf_counter()
    import sys, json
    import numasched as ns
    cluster = ns.Cluster.uniform(hosts=1000, nodes_per_host=2, cpu_per_node=32_000,
                                 mem_per_node=256 * 2**30)
    pod = (8_000, 16 * 2**30)
    ok = ns.filter_hosts(cluster, pod, backend=sys.argv[1])
    s = ns.score_hosts(cluster, pod, policy="best-fit", numa="restricted", backend=sys.argv[1])
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "numba_loaded": "numba" in sys.modules,
                      "answer": [int(ok.sum()), s.score[:8].tolist(), int(s.nodes[0])]}))
""")


def first_call(backend: str) -> dict:
    """One fresh process with an empty Numba cache: seconds to the first answers, and them."""
    with tempfile.TemporaryDirectory(prefix="numasched-first-call-") as cache:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env["NUMBA_CACHE_DIR"] = cache
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        proc = subprocess.run([sys.executable, "-c", CHILD, backend], capture_output=True,
                              text=True, env=env, cwd=str(REPO), timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"the {backend} child failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["notice"] = [ln for ln in proc.stderr.splitlines() if ln.startswith("numasched:")]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="cython,numba")
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes per backend")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    results, answers = {}, {}
    for backend in backends:
        runs = [first_call(backend) for _ in range(args.rounds)]
        results[backend] = {"seconds": statistics.median(r["seconds"] for r in runs),
                            "runs": [r["seconds"] for r in runs],
                            "numba_loaded": any(r["numba_loaded"] for r in runs),
                            "notice": runs[0]["notice"]}
        answers[backend] = runs[0]["answer"]
        print(f"{backend:<8} {results[backend]['seconds']:8.2f} s to the first filter + score "
              f"(import included; numba loaded: {results[backend]['numba_loaded']})")
        for line in results[backend]["notice"]:
            print(f"         stderr: {line}")
    same = all(a == answers[backends[0]] for a in answers.values())
    if "cython" in results and "numba" in results:
        ratio = results["numba"]["seconds"] / results["cython"]["seconds"]
        results["numba_over_cython"] = ratio
        print(f"numba / cython: {ratio:,.0f}x")
    print(f"same answers on every backend: {same}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
