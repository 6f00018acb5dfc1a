"""Peak memory of one ``place()`` call beyond its inputs, in bytes per request.

    python benchmarks/memory.py                                   # 1,000,000 requests / 100,000 hosts
    python benchmarks/memory.py --requests 100000 --hosts 10000 --policy first-fit --backend numba

DESIGN.md's target: placing 1,000,000 requests on 100,000 hosts takes at most 200 bytes per request
beyond the input arrays. The measurement runs in a fresh child process, so nothing else lives in
its heap:

1. the child builds the inputs (the mixed workload on demo hosts, as in the other benchmarks),
   makes one tiny ``place()`` call of the same backend (imports, Numba compile), and collects
   garbage;
2. it reads its resident set (``VmRSS``) and resets its peak (``VmHWM``) by writing 5 to
   ``/proc/self/clear_refs`` (Linux >= 4.0);
3. it calls ``place()`` once and reads ``VmHWM`` again, with the result still alive.

Peak beyond the inputs = VmHWM after - VmRSS before; it counts the outputs (host, node shares,
node masks, reasons, modes, free state), the request order and every temporary of the call.
The child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so glibc serves every large array with its
own mmap and returns it on free (the default dynamic threshold could leave freed input temporaries
in the heap and let the call reuse them unseen). Where ``clear_refs`` cannot be written, the child
falls back to ``ru_maxrss`` before and after the call (an upper bound on input building then hides
a smaller peak: the report says which method was used). The parent also reports the child's
whole-life peak from ``getrusage(RUSAGE_CHILDREN)``, inputs and interpreter included.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET_BYTES_PER_REQUEST = 200


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") <= _status_kib("VmRSS") + 64


def child(n_requests: int, n_hosts: int, policy: str, backend: str, numa: str) -> dict:
    sys.path[:0] = [str(HERE), str(REPO)]
    import numpy as np

    from numasched import Requests, place

    from _instances import mixed_instance

    cluster, requests = mixed_instance(n_requests, n_hosts)
    place(cluster, Requests(requests.cpu[:4], requests.mem[:4]), policy=policy, numa=numa,
          backend=backend)
    input_bytes = sum(getattr(cluster, f).nbytes for f in ("node_cpu", "node_mem", "distance",
                                                           "schedulable", "free_cpu", "free_mem",
                                                           "present"))
    input_bytes += sum(getattr(requests, f).nbytes for f in ("cpu", "mem", "numa", "vnuma",
                                                             "priority", "required_host"))
    gc.collect()
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    placement = place(cluster, requests, policy=policy, numa=numa, backend=backend)
    seconds = time.perf_counter() - start
    if reset:
        method, peak_kib = "VmHWM reset by /proc/self/clear_refs", _status_kib("VmHWM")
        beyond_kib = peak_kib - rss_before
    else:
        method, peak_kib = "ru_maxrss before/after", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        beyond_kib = peak_kib - max(maxrss_before, rss_before)
    output_bytes = sum(getattr(placement, f).nbytes for f in ("host", "cpu_by_node", "mem_by_node",
                                                              "nodes", "reason", "free_cpu",
                                                              "free_mem", "modes"))
    return {
        "requests": n_requests, "hosts": n_hosts, "policy": policy, "numa": numa,
        "backend": placement.settings["backend"], "seconds": seconds,
        "placed": int(placement.placed.sum()), "method": method,
        "input_bytes": int(input_bytes), "rss_before_bytes": rss_before * 1024,
        "peak_bytes": peak_kib * 1024, "beyond_inputs_bytes": beyond_kib * 1024,
        "bytes_per_request": beyond_kib * 1024 / n_requests,
        "output_bytes_per_request": output_bytes / n_requests,
        "numpy": np.__version__,
    }


def measure(n_requests: int, n_hosts: int, policy: str = "best-fit", backend: str = "auto",
            numa: str = "restricted") -> dict:
    """Run the measurement in a fresh child process and return its figures."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, __file__, "--child", "--requests", str(n_requests),
                          "--hosts", str(n_hosts), "--policy", policy, "--backend", backend,
                          "--numa", numa], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the measuring child failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN keeps the largest peak of any child so far: only a larger one shows.
    result["child_lifetime_peak_bytes"] = after * 1024 if after > before else None
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=None, help="default: requests / 10")
    parser.add_argument("--policy", default="best-fit")
    parser.add_argument("--numa", default="restricted")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    hosts = args.hosts if args.hosts is not None else args.requests // 10
    if args.child:
        print(json.dumps(child(args.requests, hosts, args.policy, args.backend, args.numa)))
        return 0
    r = measure(args.requests, hosts, args.policy, args.backend, args.numa)
    mib = 2**20
    verdict = "within" if r["bytes_per_request"] <= TARGET_BYTES_PER_REQUEST else "OVER"
    print(f"{r['requests']:,} requests / {r['hosts']:,} hosts, {r['policy']} + {r['numa']}, "
          f"{r['backend']}: placed {r['placed']:,} in {r['seconds']:.1f} s")
    print(f"  inputs (cluster + requests arrays)  {r['input_bytes'] / mib:10.1f} MiB")
    print(f"  RSS before the call                 {r['rss_before_bytes'] / mib:10.1f} MiB")
    print(f"  peak RSS during the call            {r['peak_bytes'] / mib:10.1f} MiB  ({r['method']})")
    print(f"  peak beyond the inputs              {r['beyond_inputs_bytes'] / mib:10.1f} MiB = "
          f"{r['bytes_per_request']:.0f} bytes/request ({verdict} the {TARGET_BYTES_PER_REQUEST} "
          f"target); the Placement's own arrays are {r['output_bytes_per_request']:.0f} bytes/request")
    if r["child_lifetime_peak_bytes"]:
        print(f"  child's whole-life peak (RUSAGE_CHILDREN, inputs and interpreter included) "
              f"{r['child_lifetime_peak_bytes'] / mib:.1f} MiB")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
