"""Placements/s of every host policy on 100,000 requests / 10,000 hosts, side by side.

One command, from the repository root:

    python benchmarks/throughput.py                    # 2-4 minutes, mostly the NumPy scan
    python benchmarks/throughput.py --backends cython  # skip Numba
    python benchmarks/throughput.py --scan-slice 5000  # time the NumPy scan on a sample only
    python benchmarks/throughput.py --timer cpu        # CPU time: steadier on a busy machine
    python benchmarks/throughput.py --from-json benchmarks/results/throughput.json --markdown

The instance is the kernel-100k one of ``test_kernel_100k.py``: 50,000 Azure-mix VMs + 50,000
containers on 10,000 demo hosts (2 NUMA nodes x 32 cores x 256 GiB), ``numa="restricted"``,
order ``decreasing``, node choice ``pack``. For each policy, in one run and in this order:

- numasched's Cython and Numba backends place the whole instance (``--rounds`` timed calls each,
  median; Numba is compiled by an untimed tiny call first);
- the NumPy full scan (``peers/numpy_scan.py``, every host scored for every request, vectorised
  over hosts) places the whole instance too, and must give the same hosts as numasched;
- the pure-Python reference places ``--reference-slice`` requests sampled from the instance
  (seeded, without replacement) on the same 10,000 empty hosts: it scans every host for every
  request in Python, so its cost per placement barely depends on how full the hosts are, and its
  placements/s from the slice is the figure used. It must agree with Cython on that slice.

"× BFD scan" puts every score against one yardstick, the NumPy scan under best-fit. A shared
machine's speed drifts by tens of percent over the minutes a run takes, so that yardstick is
measured beside each score rather than once: every round of every policy, right after its
backends' calls, the best-fit scan places ``--bfd-slice`` sampled requests on the empty hosts
(its cost per placement does not depend on how full the hosts are: 84.7 µs on a 2,000-request
slice, 85.6 µs over the whole instance, measured side by side), and the ratio is over the median
of those. ``--bfd-slice 0`` uses the best-fit group's whole-instance scan instead.

A contender that places differently makes the command exit with status 1 (the table still
prints, marked DIFFERENT): a speed ratio between different computations means nothing.
Ratios are placements/s over placements/s, all measured in this run. The table is printed with
rich; ``--json`` (default ``benchmarks/out/throughput.json``, a git-ignored folder) keeps the
numbers. ``benchmarks/results/`` holds the runs the documentation quotes; a new run never
overwrites them unless you name one of them with ``--json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # run as a script: import the checkout's numasched
    sys.path.insert(1, str(REPO))

import numpy as np  # noqa: E402

import numasched  # noqa: E402
from numasched import Requests, codes, place  # noqa: E402

from _instances import mixed_instance  # noqa: E402
from peers.numpy_scan import place_scan  # noqa: E402

NUMA = "restricted"
DEFAULT_JSON = HERE / "out" / "throughput.json"   # git-ignored: a run never changes the checkout


TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = TIMERS["wall"]


def _timed(fn, rounds: int):
    """(median seconds, last result) over ``rounds`` calls, on the chosen clock."""
    times, result = [], None
    for _ in range(rounds):
        start = _clock()
        result = fn()
        times.append(_clock() - start)
    return statistics.median(times), result


def _sample(requests: Requests, size: int, seed: int) -> Requests:
    """``size`` requests drawn without replacement (kept in their original relative order)."""
    n = len(requests)
    size = min(size, n)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return Requests(requests.cpu[idx], requests.mem[idx], vnuma=requests.vnuma[idx],
                    priority=requests.priority[idx])


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


COMMIT_AT_IMPORT = git_commit()


def measure(n_requests: int, n_hosts: int, policies, backends, rounds: int, reference_slice: int,
            scan_slice: int, bfd_slice: int = 0, log=print) -> dict:
    commit = COMMIT_AT_IMPORT  # the kernel this process loaded, even if HEAD moves during the run
    cluster, requests = mixed_instance(n_requests, n_hosts)
    if "numba" in backends:  # compile outside the timed calls
        place(cluster, _sample(requests, 4, 0), backend="numba")
    scan_requests = requests if not scan_slice else _sample(requests, scan_slice, 1)
    ref_requests = _sample(requests, reference_slice, 2) if reference_slice else None
    bfd_requests = _sample(requests, bfd_slice, 3) if bfd_slice else None
    rows = []
    for policy in policies:
        settings = {"policy": policy, "numa": NUMA}
        row = {"policy": policy, "backends": {}}
        # Rounds interleave the backends and the best-fit yardstick, so a drift of the machine's
        # speed moves them alike.
        times = {backend: [] for backend in backends}
        bfd_times = []
        for _ in range(rounds):
            for backend in backends:
                seconds, placement = _timed(
                    lambda: place(cluster, requests, backend=backend, **settings), 1)
                times[backend].append(seconds)
                if backend not in row["backends"]:  # every round places alike: summarise one
                    row.setdefault("hosts", placement.host)
                    row["backends"][backend] = {"hosts_used": placement.summary()["hosts_used"],
                                                "placed": int(placement.placed.sum())}
            if bfd_requests is not None:
                bfd_times.append(_timed(lambda: place_scan(cluster, bfd_requests, policy="best-fit",
                                                           numa=NUMA), 1)[0])
        for backend in backends:
            seconds = statistics.median(times[backend])
            row["backends"][backend].update(seconds=seconds, per_s=n_requests / seconds)
            log(f"  {policy:<12} {backend:<6} {seconds:8.3f} s  {n_requests / seconds:>12,.0f} /s")
        if bfd_times:
            seconds = statistics.median(bfd_times)
            row["bfd_slice"] = {"seconds": seconds, "requests": len(bfd_requests),
                                "per_s": len(bfd_requests) / seconds}
            log(f"  {policy:<12} BFD    {seconds:8.3f} s  {len(bfd_requests) / seconds:>12,.0f} /s"
                f"  ({len(bfd_requests):,} requests, beside every round)")
        # The full scan, on the whole instance unless --scan-slice: it must agree with numasched.
        seconds, scan = _timed(lambda: place_scan(cluster, scan_requests, **settings), 1)
        check = place(cluster, scan_requests, backend=backends[0], **settings).host if scan_slice \
            else row["hosts"]
        row["numpy_scan"] = {"seconds": seconds, "requests": len(scan_requests),
                             "per_s": len(scan_requests) / seconds,
                             "same_hosts": bool(np.array_equal(scan["host"], check))}
        log(f"  {policy:<12} numpy  {seconds:8.3f} s  {len(scan_requests) / seconds:>12,.0f} /s"
            f"  ({len(scan_requests):,} requests; same hosts: {row['numpy_scan']['same_hosts']})")
        if ref_requests is not None:
            seconds, ref = _timed(lambda: place(cluster, ref_requests, backend="reference", **settings), 1)
            same = np.array_equal(ref.host, place(cluster, ref_requests, backend=backends[0],
                                                  **settings).host)
            row["reference"] = {"seconds": seconds, "requests": len(ref_requests),
                                "per_s": len(ref_requests) / seconds, "same_hosts": bool(same)}
            log(f"  {policy:<12} ref    {seconds:8.3f} s  {len(ref_requests) / seconds:>12,.1f} /s"
                f"  ({len(ref_requests):,} requests; same hosts: {same})")
        del row["hosts"]
        for figures in row["backends"].values():
            figures["x_numpy_scan"] = figures["per_s"] / row["numpy_scan"]["per_s"]
            if "reference" in row:
                figures["x_reference"] = figures["per_s"] / row["reference"]["per_s"]
        rows.append(row)
    # Every score against one yardstick: the best-fit (BFD) NumPy scan, measured beside each
    # score (--bfd-slice), else the best-fit group's whole-instance scan.
    bfd = next((r["numpy_scan"]["per_s"] for r in rows if r["policy"] == "best-fit"), None)
    for row in rows:
        yardstick = row["bfd_slice"]["per_s"] if "bfd_slice" in row else bfd
        for figures in row["backends"].values():
            if yardstick:
                figures["x_bfd_scan"] = figures["per_s"] / yardstick
    return {
        "requests": n_requests, "hosts": n_hosts, "numa": NUMA, "order": "decreasing",
        "rounds": rounds, "reference_slice": reference_slice, "scan_slice": scan_slice,
        "bfd_slice": bfd_slice,
        "timer": "cpu" if _clock is TIMERS["cpu"] else "wall",
        "commit": commit, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}",
        "rows": rows,
    }


def render(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    n, h = result["requests"], result["hosts"]
    table = Table(title=f"placements/s, {n:,} requests / {h:,} hosts, numa={result['numa']}, "
                        f"order={result['order']}, {result['timer']} time (commit {result['commit']}"
                        f"{', ' + result['kernel'] if result.get('kernel') else ''}, "
                        f"{result['date']})")
    for name in ("policy", "backend", "timed on", "seconds", "placements/s", "x ref", "x scan",
                 "x BFD scan", "hosts used"):
        table.add_column(name, justify="left" if name in ("policy", "backend") else "right")
    for row in result["rows"]:
        for backend, f in row["backends"].items():
            table.add_row(row["policy"], backend, f"{n:,}", f"{f['seconds']:.3f}",
                          f"{f['per_s']:,.0f}",
                          f"{f['x_reference']:,.0f}" if "x_reference" in f else "-",
                          f"{f['x_numpy_scan']:.2f}",
                          f"{f['x_bfd_scan']:.0f}" if "x_bfd_scan" in f else "-",
                          f"{f['hosts_used']:,}")
        scan = row["numpy_scan"]
        table.add_row("", "numpy scan", f"{scan['requests']:,}", f"{scan['seconds']:.3f}",
                      f"{scan['per_s']:,.0f}", "", "1", "",
                      "= numasched" if scan["same_hosts"] else "DIFFERENT")
        if "bfd_slice" in row:
            bfd = row["bfd_slice"]
            table.add_row("", "BFD scan", f"{bfd['requests']:,} (sample)", f"{bfd['seconds']:.3f}",
                          f"{bfd['per_s']:,.0f}", "", "", "1", "")
        if "reference" in row:
            ref = row["reference"]
            table.add_row("", "reference", f"{ref['requests']:,} (sample)", f"{ref['seconds']:.3f}",
                          f"{ref['per_s']:,.1f}", "1", "", "",
                          "= numasched" if ref["same_hosts"] else "DIFFERENT")
        table.add_section()
    console = Console(width=max(Console().width, 100))
    console.print(table)
    console.print("x ref / x scan / x BFD scan: the backend's placements/s over the reference's / "
                  "the NumPy full scan's of the same score / the best-fit NumPy scan's (timed on a "
                  "sample beside every round of the score, if a 'BFD scan' row shows it), all "
                  "measured in this run. The reference is timed on a seeded sample of "
                  "the requests placed on the same empty hosts (its cost per placement is a Python "
                  "scan of every host, whatever their state). '= numasched': same hosts as "
                  f"{next(iter(result['rows'][0]['backends']))} on what it placed.")


def markdown(result: dict) -> str:
    """The table as Markdown (for the README)."""
    lines = ["| policy | backend | s | placements/s | × reference | × NumPy scan | × BFD scan | hosts used |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in result["rows"]:
        scan, ref = row["numpy_scan"], row.get("reference")
        for backend, f in row["backends"].items():
            x_ref = f"{f['x_reference']:,.0f}×" if "x_reference" in f else "–"
            lines.append(f"| {row['policy']} | {backend} | {f['seconds']:.3f} | **{f['per_s']:,.0f}** "
                         f"| {x_ref} | {f['x_numpy_scan']:.2f}× | "
                         f"{format(f['x_bfd_scan'], '.0f') + '×' if 'x_bfd_scan' in f else '–'} "
                         f"| {f['hosts_used']:,} |")
        lines.append(f"| {row['policy']} | NumPy full scan | {scan['seconds']:.3f} | {scan['per_s']:,.0f} "
                     f"| | 1× | | {'same hosts' if scan['same_hosts'] else 'DIFFERENT'} |")
        if "bfd_slice" in row:
            bfd = row["bfd_slice"]
            lines.append(f"| {row['policy']} | best-fit NumPy scan ({bfd['requests']:,} sampled "
                         f"requests, beside every round) | {bfd['seconds']:.3f} | {bfd['per_s']:,.0f} "
                         f"| | | 1× | |")
        if ref:
            lines.append(f"| {row['policy']} | reference ({ref['requests']} sampled requests) | "
                         f"{ref['seconds']:.3f} | {ref['per_s']:,.1f} | 1× | | | "
                         f"{'same hosts' if ref['same_hosts'] else 'DIFFERENT'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--policies", default=",".join(codes.HOST_POLICIES),
                        help="comma-separated host policies (default: all five)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated numasched backends (default: cython,numba)")
    parser.add_argument("--rounds", type=int, default=1, help="timed calls per backend (median)")
    parser.add_argument("--reference-slice", type=int, default=20,
                        help="requests the reference places (0: skip the reference)")
    parser.add_argument("--scan-slice", type=int, default=0,
                        help="requests the NumPy scan places (0: the whole instance)")
    parser.add_argument("--bfd-slice", type=int, default=2000,
                        help="requests of the best-fit scan timed beside every round of every "
                             "score, the yardstick of 'x BFD scan' (0: the best-fit group's "
                             "whole-instance scan)")
    parser.add_argument("--timer", choices=sorted(TIMERS), default="wall",
                        help="wall clock, or CPU time of this process (steadier on a shared "
                             "machine; every contender runs on one thread)")
    parser.add_argument("--kernel", default="", help="a name for the kernel measured, kept in the JSON")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the numbers")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="do not measure: show the numbers of an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        render(result)
        if args.markdown:
            print(markdown(result))
        return 0
    global _clock
    _clock = TIMERS[args.timer]

    available = numasched.available_backends()
    backends = (args.backends.split(",") if args.backends
                else [b for b in ("cython", "numba") if b in available])
    if "cython" in backends and "cython" not in available:
        print("the Cython backend (numasched._core) is not built; skipping it", file=sys.stderr)
        backends.remove("cython")
    policies = args.policies.split(",")
    for policy in policies:
        codes.resolve(codes.HOST_POLICIES, policy, "policy")
    print(f"{args.requests:,} requests / {args.hosts:,} hosts; backends {', '.join(backends)}; "
          f"policies {', '.join(policies)}")
    result = measure(args.requests, args.hosts, policies, backends, args.rounds,
                     args.reference_slice, args.scan_slice, args.bfd_slice)
    result["kernel"] = args.kernel
    render(result)
    if args.markdown:
        print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"numbers written to {args.json}")
    differ = [f"{row['policy']} ({name})" for row in result["rows"]
              for name in ("numpy_scan", "reference")
              if name in row and not row[name]["same_hosts"]]
    if differ:
        print(f"placed differently from numasched: {', '.join(differ)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
