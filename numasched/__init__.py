"""numasched: NUMA-aware placement of VMs and containers onto hosts with NUMA nodes.

    >>> import numasched as ns
    >>> cluster = ns.Cluster.uniform(hosts=4, nodes_per_host=2, cpu_per_node=32_000,
    ...                              mem_per_node=256 * 2**30)
    >>> placement = ns.place(cluster, ns.Requests(cpu=[4000, 48000], mem=[8 * 2**30, 300 * 2**30]))
    >>> placement.host.tolist(), [bin(int(x)) for x in placement.nodes]
    ([0, 0], ['0b1', '0b11'])

Layers: ``numasched.api`` (Cluster, Requests, place, Placement) validates and copies;
``numasched._core`` (Cython) and ``numasched.kernels`` run the placement loop;
``numasched.policies`` names the choices; ``numasched.control`` is the desired-state controller.
"""
from . import codes
from ._backend import available as available_backends
from ._backend import warmup
from .api import Cluster, Placement, Requests, place
from .embedding import HostScores, filter_hosts, score_batch, score_hosts
from .optimize.plan import plan
from .optimize.rebalance import Plan, rebalance

__all__ = ["Cluster", "Requests", "Placement", "place", "codes", "available_backends",
           "filter_hosts", "score_hosts", "score_batch", "HostScores", "rebalance", "Plan", "plan",
           "warmup", "sweep", "cells"]


def __getattr__(name: str):
    # sweep() and cells() need the distributed extra (dask, pandas): imported on first use, so
    # ``import numasched`` never imports dask.
    if name in ("sweep", "cells"):
        from .evaluation import sweep as _sweep
        return getattr(_sweep, name)
    raise AttributeError(f"module 'numasched' has no attribute {name!r}")


__version__ = "0.1.0"
