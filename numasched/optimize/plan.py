"""Capacity planning: how many hosts of one shape a mix of requests needs, under a policy, with
failure headroom.

**Host shape.** ``NODESxCORESc/MEMORY``: ``2x16c/192Gi`` is a host of 2 NUMA nodes, each of 16
cores and 192 GiB (so 32 cores and 384 GiB per host). ``NODES`` is a positive integer (at most
64), ``CORES`` a positive number of cores (``16c``, ``7.5c``), ``MEMORY`` a Kubernetes memory
quantity (``192Gi``, ``1.5Ti``, ``200G``). Anything else is a ``ValueError`` quoting the text and
the expected form.

**The count.** ``hosts_needed`` is the fewest identical hosts on which ``place()`` with the
policy places every request: found by doubling from the lower bound until everything fits,
then bisection, and checked to be minimal (one host fewer leaves something pending). The
**lower bound** is the larger over CPU and memory of ceil(total demand / host capacity), raised
to Martello and Toth's L2 bound of each resource; the **binding resource** is the one whose
demand over the capacity of the hosts counted is the higher (the one that runs out first).

**Failure headroom** ``failures=N``: for every set of N hosts that fail, the requests they ran
restart on the free capacity of the other hosts, placed by the same policy, while everything
else stays where it is (vSphere HA's restart semantics: nothing is re-packed after a failure).
The count grows from ``hosts_needed`` until that holds. Every N-set is checked when there are at
most ``EXHAUSTIVE_SETS`` of them; beyond that only the N-sets of the most loaded hosts (by CPU,
by memory and by requests held) are, and ``failure_check`` says ``"most-loaded"`` instead of
``"exhaustive"``.

A request that no host of the shape could ever hold under its NUMA mode makes the question
unanswerable: ``ValueError`` naming it.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from .. import codes

EXHAUSTIVE_SETS = 5000
MAX_HOSTS = 1_000_000
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX×]\s*([0-9]*\.?[0-9]+)\s*c\s*/\s*(\S+)\s*$")
SHAPE_HELP = ("NODESxCORESc/MEMORY, e.g. 2x16c/192Gi (2 NUMA nodes of 16 cores and 192Gi each)")


@dataclass(frozen=True)
class HostShape:
    """``nodes`` NUMA nodes of ``cpu_per_node`` millicores and ``mem_per_node`` bytes each."""

    nodes: int
    cpu_per_node: int
    mem_per_node: int
    text: str = ""

    @property
    def host_cpu(self) -> int:
        return self.nodes * self.cpu_per_node

    @property
    def host_mem(self) -> int:
        return self.nodes * self.mem_per_node

    def cluster(self, hosts: int):
        """``hosts`` empty hosts of this shape."""
        from ..api import Cluster

        return Cluster.uniform(hosts, self.nodes, self.cpu_per_node, self.mem_per_node)

    def __str__(self) -> str:
        return self.text or f"{self.nodes}x{self.cpu_per_node / 1000:g}c/{self.mem_per_node}"


def parse_host_shape(text) -> HostShape:
    """``HostShape`` of ``"2x16c/192Gi"`` (see the module docstring); a HostShape passes through."""
    from ..io.quantity import cpu_millicores, memory_bytes

    if isinstance(text, HostShape):
        return text
    if not isinstance(text, str):
        raise ValueError(f"host shape must be a string like 2x16c/192Gi, got {text!r}")
    match = _SHAPE.match(text)
    if not match:
        raise ValueError(f"host shape {text!r}: expected {SHAPE_HELP}")
    nodes = int(match.group(1))
    if not 1 <= nodes <= codes.MAX_NODES:
        raise ValueError(f"host shape {text!r}: the node count must be 1 to {codes.MAX_NODES}, "
                         f"got {nodes}")
    try:
        cpu = cpu_millicores(match.group(2), "cores")
        mem = memory_bytes(match.group(3), "memory")
    except ValueError as exc:
        raise ValueError(f"host shape {text!r}: {exc}") from None
    if cpu <= 0 or mem <= 0:
        raise ValueError(f"host shape {text!r}: cores and memory per node must be positive")
    if cpu > codes.MAX_NODE_AMOUNT or mem > codes.MAX_NODE_AMOUNT:
        raise ValueError(f"host shape {text!r}: a node larger than {codes.MAX_NODE_AMOUNT} "
                         f"millicores or bytes is not supported")
    return HostShape(nodes, cpu, mem, text.strip())


def lower_bound(shape: HostShape, requests) -> tuple[int, str]:
    """(hosts, binding resource) of the bound in the module docstring."""
    from ..kernels.metrics import martello_toth_l2

    bounds = {}
    for name, amount, cap in (("cpu", requests.cpu, shape.host_cpu),
                              ("memory", requests.mem, shape.host_mem)):
        simple = math.ceil(int(amount.sum()) / cap) if len(amount) else 0
        fits = np.sort(amount[amount <= cap])
        bounds[name] = max(simple, int(martello_toth_l2(fits, cap)) if fits.size else 0)
    share = {"cpu": int(requests.cpu.sum()) / shape.host_cpu,
             "memory": int(requests.mem.sum()) / shape.host_mem}
    binding = max(("cpu", "memory"), key=lambda r: (bounds[r], share[r]))
    return max(bounds.values()), binding


def _place(shape, hosts, requests, policy, numa, backend):
    from ..api import place

    return place(shape.cluster(hosts), requests, policy=policy, numa=numa, backend=backend)


def _fits(shape, hosts, requests, policy, numa, backend) -> bool:
    return bool((_place(shape, hosts, requests, policy, numa, backend).host >= 0).all())


def hosts_needed(shape: HostShape, requests, *, policy="best-fit", numa: str = "restricted",
                 backend: str = "auto", labels=None) -> int:
    """Fewest hosts of ``shape`` on which ``place()`` places every request (module docstring).
    ``labels[i]`` names request i in the error about a request no host could hold."""
    from ..io.quantity import format_cpu, format_memory

    if len(requests) == 0:
        return 0
    lo = max(1, lower_bound(shape, requests)[0])
    first = _place(shape, 1, requests, policy, numa, backend)
    too_large = np.flatnonzero(first.reason == codes.REASON_TOO_LARGE)
    if too_large.size:
        i = int(too_large[0])
        mode = codes.name_of(codes.NUMA_MODES, int(first.modes[i]))
        name = f"request {i}" if labels is None else str(labels[i])
        raise ValueError(f"{name} (cpu {format_cpu(int(requests.cpu[i]))}, memory "
                         f"{format_memory(int(requests.mem[i]))}) can never fit a host of shape "
                         f"{shape} under NUMA mode {mode}")
    hi = lo
    while not _fits(shape, hi, requests, policy, numa, backend):
        lo = hi + 1
        hi = min(2 * hi, MAX_HOSTS)
        if hi >= MAX_HOSTS and not _fits(shape, hi, requests, policy, numa, backend):
            raise ValueError(f"more than {MAX_HOSTS} hosts of shape {shape} would be needed")
    while lo < hi:   # invariant: everything fits on hi hosts
        mid = (lo + hi) // 2
        if _fits(shape, mid, requests, policy, numa, backend):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _failure_sets(placement, failures: int):
    """(N-sets of hosts to check, "exhaustive" or "most-loaded")."""
    hosts = placement.cluster.hosts
    total = math.comb(hosts, failures)
    if total <= EXHAUSTIVE_SETS:
        return itertools.combinations(range(hosts), failures), "exhaustive", total
    free_c = placement.free_cpu.sum(axis=1)
    free_m = placement.free_mem.sum(axis=1)
    held = np.bincount(placement.host[placement.host >= 0], minlength=hosts)
    sets = set()
    for key in (free_c, free_m, -held):
        top = np.argsort(key, kind="stable")[: failures + 2].tolist()
        for combo in itertools.combinations(sorted(top), failures):
            sets.add(combo)
    return sorted(sets), "most-loaded", len(sets)


def survives(placement, failures: int, policy, numa, backend) -> tuple[bool, str, int, tuple]:
    """Whether the requests of every ``failures``-set of hosts restart on the others' free
    capacity; (ok, how the sets were chosen, sets checked, the first set that fails or ())."""
    from ..api import Requests, place

    if failures == 0:
        return True, "exhaustive", 0, ()
    r = placement.requests
    sets, how, count = _failure_sets(placement, failures)
    cluster = placement.cluster
    for failed in sets:
        on = np.flatnonzero(np.isin(placement.host, failed))
        if on.size == 0:
            continue
        free_c, free_m = np.array(placement.free_cpu), np.array(placement.free_mem)
        free_c[list(failed)] = cluster.node_cpu[list(failed)]
        free_m[list(failed)] = cluster.node_mem[list(failed)]
        schedulable = np.ones(cluster.hosts, dtype=bool)
        schedulable[list(failed)] = False
        state = cluster.with_free(free_c, free_m, schedulable=schedulable)
        sub = Requests(r.cpu[on], r.mem[on], numa=placement.modes[on], vnuma=r.vnuma[on],
                       priority=r.priority[on])
        if (place(state, sub, policy=policy, numa=numa, backend=backend).host < 0).any():
            return False, how, count, tuple(int(h) for h in failed)
    return True, how, count, ()


def plan(host_shape, requests, *, policy="best-fit", numa: str | None = None, failures: int = 0,
         backend: str = "auto", labels=None) -> dict:
    """How many hosts of ``host_shape`` the mix ``requests`` needs under ``policy`` with
    ``failures`` hosts' headroom (see the module docstring); plain data:

    ``hosts`` (the answer), ``hosts_without_failures``, ``lower_bound`` and ``binding`` (the
    resource that runs out first), ``failures`` and ``failure_check`` (how the N-sets were
    chosen, how many), ``utilisation`` of CPU and memory on the answer's hosts, and the
    placement's ``summary`` there (locality, hosts used, ...). ``labels[i]`` names request i
    in errors.
    """
    from ..api import Requests
    from .. import policies

    shape = parse_host_shape(host_shape)
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a numasched.Requests, got {type(requests).__name__}")
    if isinstance(failures, bool) or not isinstance(failures, (int, np.integer)) or failures < 0:
        raise ValueError(f"failures must be a non-negative integer, got {failures!r}")
    if len(requests) == 0:
        raise ValueError("requests: the mix is empty")
    chosen = policies.get(policy)
    numa = numa or chosen.numa or "restricted"
    bound, binding = lower_bound(shape, requests)
    base = hosts_needed(shape, requests, policy=chosen, numa=numa, backend=backend, labels=labels)
    hosts = base
    check = {"how": "exhaustive", "sets": 0}
    while True:
        placement = _place(shape, hosts, requests, chosen, numa, backend)
        if (placement.host >= 0).all():
            ok, how, count, _ = survives(placement, int(failures), chosen, numa, backend)
            check = {"how": how, "sets": count}
            if ok:
                break
        hosts += 1
        if hosts > MAX_HOSTS:
            raise ValueError(f"more than {MAX_HOSTS} hosts of shape {shape} would be needed")
    s = placement.summary()
    return {
        "host_shape": str(shape),
        "host": {"nodes": shape.nodes, "cpu_per_node": shape.cpu_per_node,
                 "memory_per_node": shape.mem_per_node, "cpu": shape.host_cpu,
                 "memory": shape.host_mem},
        "policy": chosen.name, "numa": numa,
        "requests": len(requests),
        "demand": {"cpu": int(requests.cpu.sum()), "memory": int(requests.mem.sum())},
        "hosts": hosts,
        "hosts_without_failures": base,
        "lower_bound": bound,
        "binding": binding,
        "failures": int(failures),
        "failure_check": check,
        "utilisation": {"cpu": int(requests.cpu.sum()) / (hosts * shape.host_cpu),
                        "memory": int(requests.mem.sum()) / (hosts * shape.host_mem)},
        "summary": {k: s[k] for k in ("hosts_used", "locality", "single_node_fraction",
                                      "stranded_cpu", "stranded_mem")},
    }


def compare(host_shape, requests, policies_=("esxi", "linux"), **kwargs) -> list[dict]:
    """``plan`` for each policy, side by side (same shape, mix and headroom)."""
    return [plan(host_shape, requests, policy=p, **kwargs) for p in policies_]


def trace_peak(trace, host_shape) -> tuple[object, float, np.ndarray]:
    """The requests of ``trace`` present together at the instant of highest demand (the larger
    over CPU and memory of the sum present over one host's capacity), that instant, and their
    row indices in the trace. A request is present over [arrival, departure)."""
    from ..api import Requests

    shape = parse_host_shape(host_shape)
    times = np.unique(trace.arrival)
    arr_order = np.argsort(trace.arrival, kind="stable")
    dep_order = np.argsort(trace.departure, kind="stable")
    level = None
    for amount, cap in ((trace.cpu, shape.host_cpu), (trace.mem, shape.host_mem)):
        arrived = np.r_[0, np.cumsum(amount[arr_order])][
            np.searchsorted(trace.arrival[arr_order], times, side="right")]
        left = np.r_[0, np.cumsum(amount[dep_order])][
            np.searchsorted(trace.departure[dep_order], times, side="right")]
        this = (arrived - left) / cap
        level = this if level is None else np.maximum(level, this)
    t = float(times[int(np.argmax(level))])
    present = np.flatnonzero((trace.arrival <= t) & (trace.departure > t))
    numa = [trace.numa[i] for i in present.tolist()]
    return Requests(trace.cpu[present], trace.mem[present], numa=numa,
                    vnuma=trace.vnuma[present], priority=trace.priority[present]), t, present


def inventory_load(topology):
    """What is in use on each NUMA node of an inventory (capacity minus free) as one request
    per node, to re-plan today's load onto another host shape."""
    from ..api import Requests

    c = topology.cluster
    used_c = (c.node_cpu - c.free_cpu).ravel()
    used_m = (c.node_mem - c.free_mem).ravel()
    keep = (used_c > 0) | (used_m > 0)
    if not keep.any():
        raise ValueError("the inventory has nothing in use (every node's free equals its capacity)")
    return Requests(np.maximum(used_c[keep], 1), np.maximum(used_m[keep], 1))


__all__ = ["HostShape", "parse_host_shape", "plan", "compare", "hosts_needed", "lower_bound",
           "survives", "trace_peak", "inventory_load", "EXHAUSTIVE_SETS"]
