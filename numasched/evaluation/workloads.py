"""Built-in example workloads: the Azure 2017 VM size mix, container-sized requests, both mixed.

Every generator is deterministic: the same arguments give the same ``Requests``, on every
machine (``numpy.random.default_rng``). Units are numasched's: millicores and bytes.

    >>> from numasched import place
    >>> from numasched.evaluation import workloads
    >>> cluster = workloads.demo_cluster(hosts=50)
    >>> requests = workloads.mixed(400, 400, seed=1)
    >>> len(requests), int(place(cluster, requests).placed.sum())
    (800, 800)
"""
from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources

import numpy as np

from ..api import Cluster, Requests
from ..codes import MODE_DEFAULT

GIB = 2**30
MIB = 2**20

VM_SIZES_RESOURCE = "vm_sizes_azure2017.csv"

#: VMs with at least this many vCPUs see their NUMA layout (ESXi exposes vNUMA to wide VMs).
VNUMA_MIN_VCPUS = 16

CONTAINER_CPU_RANGE = (100, 4000)            # millicores
CONTAINER_CPU_STEP = 50                      # millicores
CONTAINER_MEM_RANGE = (128 * MIB, 8 * GIB)   # bytes
CONTAINER_MEM_STEP = MIB                     # bytes

#: The demo host: 2 NUMA nodes x 32 cores x 256 GiB, SLIT 10 local / 21 remote.
DEMO_NODES_PER_HOST = 2
DEMO_CPU_PER_NODE = 32_000
DEMO_MEM_PER_NODE = 256 * GIB


@lru_cache(maxsize=1)
def vm_sizes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Azure 2017 VM size table as ``(cpu_millicores, mem_bytes, probability)``.

    Read from ``numasched/data/vm_sizes_azure2017.csv`` (columns ``vcpus,memory_gib,share``).
    Sizes with share 0 are dropped; the remaining shares are normalised to sum to 1.
    """
    text = resources.files("numasched").joinpath("data", VM_SIZES_RESOURCE).read_text("utf-8")
    cpu, mem, share = [], [], []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            vcpus, gib, weight = int(row["vcpus"]), float(row["memory_gib"]), float(row["share"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{VM_SIZES_RESOURCE} line {line}: bad row {row!r} ({exc})") from None
        if vcpus <= 0 or gib <= 0 or weight < 0:
            raise ValueError(f"{VM_SIZES_RESOURCE} line {line}: sizes must be positive and shares "
                             f"non-negative, got {row!r}")
        if weight == 0:
            continue
        cpu.append(vcpus * 1000)
        mem.append(int(round(gib * GIB)))
        share.append(weight)
    if not share:
        raise ValueError(f"{VM_SIZES_RESOURCE} has no VM size with a positive share")
    p = np.asarray(share, dtype=np.float64)
    out = (np.asarray(cpu, dtype=np.int64), np.asarray(mem, dtype=np.int64), p / p.sum())
    for arr in out:
        arr.setflags(write=False)
    return out


def _count(n, field: str) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{field} must be a non-negative integer, got {n!r}")
    return int(n)


def azure_vm_mix(n: int, seed=0, *, numa=None) -> Requests:
    """``n`` VMs with sizes drawn from the Azure 2017 VM size mix.

    VMs with ``>= VNUMA_MIN_VCPUS`` vCPUs get ``vnuma=True`` (like ESXi, which exposes vNUMA to
    wide VMs, so a VM split into equal NUMA clients keeps its accesses local). ``numa`` is a
    per-request NUMA mode for every VM (default None: the mode of the ``place()`` call).
    ``seed`` is anything ``numpy.random.default_rng`` takes.
    """
    n = _count(n, "n")
    cpu_sizes, mem_sizes, p = vm_sizes()
    kind = np.random.default_rng(seed).choice(p.size, size=n, p=p)
    cpu = cpu_sizes[kind]
    return Requests(cpu, mem_sizes[kind], numa=numa, vnuma=cpu >= VNUMA_MIN_VCPUS * 1000)


def _log_uniform(rng: np.random.Generator, lo: int, hi: int, step: int, n: int) -> np.ndarray:
    x = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))
    return np.clip(np.rint(x / step).astype(np.int64) * step, lo, hi)


def containers(n: int, seed=0, *, numa=None) -> Requests:
    """``n`` container-sized requests: CPU 100m..4000m (multiples of 50m) and memory
    128 MiB..8 GiB (whole MiB), each drawn log-uniformly and independently.

    ``numa`` defaults to None: containers follow the mode of the ``place()`` call.
    """
    n = _count(n, "n")
    rng = np.random.default_rng(seed)
    cpu = _log_uniform(rng, *CONTAINER_CPU_RANGE, CONTAINER_CPU_STEP, n)
    mem = _log_uniform(rng, *CONTAINER_MEM_RANGE, CONTAINER_MEM_STEP, n)
    return Requests(cpu, mem, numa=numa)


def concat(*batches: Requests) -> Requests:
    """One ``Requests`` holding every batch in order (per-request fields are kept)."""
    for i, batch in enumerate(batches):
        if not isinstance(batch, Requests):
            raise ValueError(f"batch {i} must be a numasched.Requests, got {type(batch).__name__}")
    if not batches:
        return Requests(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def join(field: str) -> np.ndarray:
        return np.concatenate([getattr(b, field) for b in batches])

    modes = join("numa")
    # Requests coerces per-request modes element by element; pass the common case compactly.
    numa = None if np.all(modes == MODE_DEFAULT) else modes.tolist()
    return Requests(join("cpu"), join("mem"), numa=numa, vnuma=join("vnuma"),
                    priority=join("priority"), required_host=join("required_host"))


def mixed(n_vms: int, n_containers: int, seed=0, *, vm_numa=None) -> Requests:
    """``n_vms`` Azure-mix VMs followed by ``n_containers`` containers, in one batch.

    Containers always follow the call's NUMA mode; VMs too unless ``vm_numa`` names a mode (e.g.
    ``"restricted"`` for ESXi-style home nodes while containers run under the call's mode).
    The first ``n_vms`` requests are the VMs.
    """
    vm_seed, container_seed = np.random.SeedSequence(seed).spawn(2)
    return concat(azure_vm_mix(n_vms, vm_seed, numa=vm_numa), containers(n_containers, container_seed))


def demo_cluster(hosts: int = 300) -> Cluster:
    """``hosts`` identical hosts of 2 NUMA nodes x 32 cores x 256 GiB (SLIT 10 / 21)."""
    return Cluster.uniform(hosts, DEMO_NODES_PER_HOST, DEMO_CPU_PER_NODE, DEMO_MEM_PER_NODE)


__all__ = ["azure_vm_mix", "containers", "concat", "mixed", "demo_cluster", "vm_sizes",
           "VNUMA_MIN_VCPUS"]
