"""Group "kernel-100k": the Cython kernel on 100,000 requests / 10,000 hosts, every host policy.

50,000 Azure-mix VMs + 50,000 containers on 10,000 demo hosts (2 x 32 cores x 256 GiB),
numa=restricted, order=decreasing. Each policy runs a few pedantic rounds (a call takes from a
fraction of a second to several seconds while the kernel scans every host per request);
``extra_info["placements_per_s"]`` is requests / median seconds. DESIGN.md's target for
best-fit + restricted is >= 1,000,000 placements/s.
"""
from __future__ import annotations

import pytest

from numasched import place

from _instances import POLICIES, mixed_instance

N_REQUESTS, N_HOSTS = 100_000, 10_000
ROUNDS = 3
TARGET_PER_S = 1_000_000  # DESIGN.md, best-fit + restricted


@pytest.fixture(scope="module")
def instance():
    return mixed_instance(N_REQUESTS, N_HOSTS)


@pytest.mark.benchmark(group="kernel-100k")
@pytest.mark.parametrize("policy", POLICIES)
def test_kernel_100k(benchmark, cython_backend, instance, policy, figures):
    cluster, requests = instance
    placement = benchmark.pedantic(place, args=(cluster, requests),
                                   kwargs={"policy": policy, "numa": "restricted",
                                           "backend": "cython"},
                                   rounds=ROUNDS, iterations=1, warmup_rounds=0)
    s = placement.summary()
    median = benchmark.stats.stats.median
    rate = N_REQUESTS / median
    benchmark.extra_info.update({
        "requests": N_REQUESTS, "hosts": N_HOSTS, "policy": policy, "numa": "restricted",
        "placements_per_s": rate, "placed": s["placed"], "hosts_used": s["hosts_used"],
        "hosts_lower_bound": s["hosts_lower_bound"],
    })
    note = f" (target {TARGET_PER_S:,}/s)" if policy == "best-fit" else ""
    figures(f"kernel-100k {policy:<12} {median:7.3f} s median -> {rate:>11,.0f} placements/s{note}; "
            f"hosts used {s['hosts_used']:,} / bound {s['hosts_lower_bound']:,}")
