"""Benchmark instances (imported by the benchmark modules; not a test module)."""
from __future__ import annotations

import numasched
from numasched.evaluation import workloads

POLICIES = tuple(numasched.codes.HOST_POLICIES)


def mixed_instance(n_requests: int, n_hosts: int, seed: int = 0):
    """Half Azure-mix VMs, half containers, on ``n_hosts`` demo hosts (2 x 32 cores x 256 GiB)."""
    n_vms = n_requests // 2
    return (workloads.demo_cluster(n_hosts),
            workloads.mixed(n_vms, n_requests - n_vms, seed=seed))
