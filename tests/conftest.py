"""Shared fixtures, hypothesis strategies and the placement invariant checker.

Everything here is plain data: an *instance* is a dict holding the raw keyword arguments of
``Cluster`` (under ``"cluster"``) and ``Requests`` (under ``"requests"``) as int64 numpy arrays
(or None / a str for optional fields), so a test can rebuild the same instance from lists, from
int64 arrays or from float arrays.

The semantics are checked against ``numasched.kernels.reference`` (the executable specification)
and not against any backend.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import numasched
from numasched import codes
from numasched.kernels import reference as ref

# --------------------------------------------------------------------------------------------
# Hypothesis profiles: no deadlines (the reference backend is slow and timing is never asserted).
#   numasched  the local default: modest example counts, the whole suite in a few minutes;
#   ci         the default when CI=true: a fresh throwaway machine on 2 busy cores, so fewer
#              examples, no example database written, and every failure printed with its blob
#              (reproduce it locally with @reproduce_failure);
#   thorough   long local runs: many more examples of every property.
# NUMASCHED_HYPOTHESIS_PROFILE picks one explicitly. Tests size their runs with examples(n),
# which scales n by the profile.
# --------------------------------------------------------------------------------------------
settings.register_profile(
    "numasched",
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.register_profile("ci", parent=settings.get_profile("numasched"), max_examples=40,
                          database=None)
settings.register_profile("thorough", parent=settings.get_profile("numasched"),
                          max_examples=1000)
PROFILE = os.environ.get("NUMASCHED_HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI") == "true" else "numasched")
settings.load_profile(PROFILE)

# Example counts used by the individual property tests (scaled by the profile's default).
_SCALE = settings.default.max_examples / 60.0


def examples(n: int) -> int:
    """``n`` examples under the default profile, proportionally fewer under 'ci' and more under
    'thorough'."""
    return max(1, int(n * _SCALE))


def pytest_report_header(config):
    return f"hypothesis profile: {PROFILE} (NUMASCHED_HYPOTHESIS_PROFILE; ci when CI=true)"


# --------------------------------------------------------------------------------------------
# The Numba kernels compile on the second core while the first runs the other tests.
# In a fresh environment the first use of the Numba placement loop compiles for about a minute.
# A process started with the session runs numasched.warmup("numba") (which writes the machine
# code to Numba's on-disk cache), tests that use Numba run last, and each waits for the warmup
# before it starts, so none of them compiles the same kernels a second time. Tests that use
# Numba: a "numba" parameter, or the "numba" marker.
# --------------------------------------------------------------------------------------------
_WARMUP: dict = {}


def _uses_numba(item) -> bool:
    params = getattr(item, "callspec", None)
    return (item.get_closest_marker("numba") is not None
            or (params is not None
                and any(isinstance(v, str) and v == "numba" for v in params.params.values())))


def pytest_sessionstart(session):
    if os.environ.get("NUMBA_DISABLE_JIT") == "1" or hasattr(session.config, "workerinput"):
        return
    # Its failure needs no report of its own: the tests then compile, and fail, themselves.
    _WARMUP["process"] = subprocess.Popen(
        [sys.executable, "-c", "import numasched; numasched.warmup('numba', fill_order=True)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=session.config.rootpath)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # After pytest's own ordering (which groups the session-scoped backend parameter), stably.
    items[:] = [i for i in items if not _uses_numba(i)] + [i for i in items if _uses_numba(i)]


def pytest_runtest_setup(item):
    process = _WARMUP.get("process")
    if process is not None and _uses_numba(item):
        try:
            process.wait(timeout=600)   # a cold compile takes about a minute on 2 busy cores
        except subprocess.TimeoutExpired:
            process.kill()              # stuck: the tests compile for themselves
            process.wait()


def pytest_sessionfinish(session):
    process = _WARMUP.pop("process", None)
    if process is not None:
        if process.poll() is None:
            process.kill()   # the session ended first (a failure with -x, an interrupt)
        process.wait()


BACKENDS = numasched.available_backends()
OTHER_BACKENDS = [b for b in BACKENDS if b != "reference"]
POLICIES = list(codes.HOST_POLICIES)
MODES = list(codes.NUMA_MODES)
ORDERS = list(codes.ORDERS)
NODE_CHOICES = list(codes.NODE_CHOICES)
RESULT_FIELDS = ("host", "cpu_by_node", "mem_by_node", "nodes", "reason", "free_cpu", "free_mem")
SUMMARY_KEYS = {
    "requests", "placed", "pending", "pending_by_reason", "hosts", "hosts_used",
    "hosts_lower_bound", "hosts_over_bound", "single_node_fraction", "locality",
    "cpu_utilisation", "mem_utilisation", "stranded_cpu", "stranded_mem",
}
GiB = 2**30


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------
NODE_KINDS = ["both"] * 8 + ["absent", "absent", "cpu-only", "mem-only"]


@st.composite
def host_templates(draw, n_nodes: int, cpu_unit: int, mem_unit: int):
    """One host's capacities: uniform or heterogeneous nodes, any slot possibly absent."""
    uniform = draw(st.booleans())
    if uniform:
        c = draw(st.integers(1, 16)) * cpu_unit
        m = draw(st.integers(1, 16)) * mem_unit
    kinds = [draw(st.sampled_from(NODE_KINDS)) for _ in range(n_nodes)]
    if "both" not in kinds and draw(st.integers(0, 3)):  # mostly, some node has both resources
        kinds[draw(st.integers(0, n_nodes - 1))] = "both"
    cpu, mem = [], []
    for kind in kinds:
        if not uniform:
            c = draw(st.integers(1, 16)) * cpu_unit + draw(st.sampled_from([0, 0, 0, 1, 3]))
            m = draw(st.integers(1, 16)) * mem_unit + draw(st.sampled_from([0, 0, 0, 1, 7]))
        cpu.append(0 if kind in ("absent", "mem-only") else c)
        mem.append(0 if kind in ("absent", "cpu-only") else m)
    return cpu, mem


@st.composite
def distances(draw, n_hosts: int, n_nodes: int):
    """None (the default), one [K, K] matrix or one per host [H, K, K]; ties are common."""
    kind = draw(st.sampled_from(["none", "none", "2d", "3d"]))
    if kind == "none":
        return None

    def matrix():
        d = np.full((n_nodes, n_nodes), 10, dtype=np.int64)
        for i in range(n_nodes):
            for j in range(n_nodes):
                if i != j:
                    d[i, j] = draw(st.sampled_from([11, 12, 21, 21, 21, 32]))
        return d

    if kind == "2d" or n_hosts == 0:
        return matrix()
    return np.stack([matrix() for _ in range(n_hosts)]).astype(np.int64)


@st.composite
def clusters(draw, max_hosts: int = 6, max_nodes: int = 4, wide_nodes: int = 8):
    """Raw Cluster keyword arguments (int64 arrays)."""
    n_hosts = draw(st.sampled_from([0] + list(range(1, max_hosts + 1)) * 3))
    if draw(st.integers(0, 9)) == 0:
        n_nodes = draw(st.integers(1, wide_nodes))
    else:
        n_nodes = draw(st.integers(1, max_nodes))
    cpu_unit = draw(st.sampled_from([1, 1000]))
    mem_unit = draw(st.sampled_from([1, 2**20, GiB]))
    # A small pool of host shapes, reused, so identical hosts (score ties) are common.
    pool = draw(st.lists(host_templates(n_nodes, cpu_unit, mem_unit), min_size=1, max_size=3))
    node_cpu = np.zeros((n_hosts, n_nodes), dtype=np.int64)
    node_mem = np.zeros((n_hosts, n_nodes), dtype=np.int64)
    for h in range(n_hosts):
        node_cpu[h], node_mem[h] = draw(st.sampled_from(pool))
    kwargs = {"node_cpu": node_cpu, "node_mem": node_mem,
              "distance": draw(distances(n_hosts, n_nodes))}
    if draw(st.booleans()):
        kwargs["schedulable"] = np.array(
            [draw(st.sampled_from([True, True, True, False])) for _ in range(n_hosts)], dtype=bool)
    if draw(st.booleans()):
        free_cpu = np.zeros_like(node_cpu)
        free_mem = np.zeros_like(node_mem)
        for h in range(n_hosts):
            for k in range(n_nodes):
                free_cpu[h, k] = draw(st.integers(0, int(node_cpu[h, k])))
                free_mem[h, k] = draw(st.integers(0, int(node_mem[h, k])))
        kwargs["free_cpu"], kwargs["free_mem"] = free_cpu, free_mem
    return kwargs


AMOUNT_KINDS = ["grid"] * 8 + ["wide"] * 3 + ["raw"] * 4 + ["huge"]


def _amount(draw, kind: str, typical: int, n_nodes: int, host_max: int):
    """``grid``: at most a node's size on a coarse grid (so equal amounts are common); ``wide``:
    a whole number of nodes, give or take one unit; ``raw``: any integer up to one and a half
    nodes; ``huge``: more than any host holds."""
    if kind == "grid":
        return draw(st.integers(1, 4)) * max(1, typical // 4)
    if kind == "wide":
        width = draw(st.integers(1, max(1, n_nodes - 1)) | st.just(n_nodes))
        return max(1, width * typical + draw(st.sampled_from([0, -1, 1])))
    if kind == "raw":
        return draw(st.integers(1, max(1, 3 * typical // 2)))
    return draw(st.integers(max(host_max, 1), max(host_max, 1) * 3 + 5))


@st.composite
def _request(draw, typical_c, typical_m, n_nodes, host_max_c, host_max_m):
    """(cpu, mem): usually of the same kind (correlated sizes), sometimes independent."""
    kind_c = draw(st.sampled_from(AMOUNT_KINDS))
    kind_m = kind_c if draw(st.integers(0, 3)) else draw(st.sampled_from(AMOUNT_KINDS))
    return (_amount(draw, kind_c, typical_c, n_nodes, host_max_c),
            _amount(draw, kind_m, typical_m, n_nodes, host_max_m))


@st.composite
def request_sets(draw, cluster_kwargs: dict, max_requests: int = 12):
    """Raw Requests keyword arguments (int64 arrays, a mode name, or None) for a cluster."""
    node_cpu, node_mem = cluster_kwargs["node_cpu"], cluster_kwargs["node_mem"]
    n_hosts, n_nodes = node_cpu.shape
    # A small node's size (the lower quartile of present nodes) scales the amounts.
    typical_c = int(np.percentile(node_cpu[node_cpu > 0], 25)) if (node_cpu > 0).any() else 16
    typical_m = int(np.percentile(node_mem[node_mem > 0], 25)) if (node_mem > 0).any() else 16
    host_max_c = int(node_cpu.sum(axis=1).max()) if n_hosts else 16
    host_max_m = int(node_mem.sum(axis=1).max()) if n_hosts else 16
    n = draw(st.integers(0, max_requests))
    if n and draw(st.integers(0, 7)) == 0:  # all requests identical
        c, m = draw(_request(typical_c, typical_m, n_nodes, host_max_c, host_max_m))
        cpu, mem = [c] * n, [m] * n
    else:
        pairs = [draw(_request(typical_c, typical_m, n_nodes, host_max_c, host_max_m))
                 for _ in range(n)]
        cpu, mem = [p[0] for p in pairs], [p[1] for p in pairs]
    kwargs = {"cpu": np.array(cpu, dtype=np.int64), "mem": np.array(mem, dtype=np.int64)}
    numa_kind = draw(st.sampled_from(["none", "none", "name", "list"]))
    if numa_kind == "name":
        kwargs["numa"] = draw(st.sampled_from(MODES))
    elif numa_kind == "list":
        choices = [None, -1, "none", "single-numa-node", "restricted", "best-effort",
                   codes.MODE_NONE, codes.MODE_SINGLE, codes.MODE_RESTRICTED,
                   codes.MODE_BEST_EFFORT]
        kwargs["numa"] = [draw(st.sampled_from(choices)) for _ in range(n)]
    if draw(st.booleans()):
        kwargs["priority"] = np.array([draw(st.integers(-2, 2)) for _ in range(n)], dtype=np.int64)
    if n_hosts and draw(st.booleans()):
        kwargs["required_host"] = np.array(
            [draw(st.sampled_from([-1, -1] + list(range(n_hosts)))) for _ in range(n)],
            dtype=np.int64)
    if draw(st.booleans()):
        kwargs["vnuma"] = np.array([draw(st.booleans()) for _ in range(n)], dtype=bool)
    return kwargs


@st.composite
def instances(draw, max_hosts: int = 6, max_nodes: int = 4, max_requests: int = 12):
    cluster_kwargs = draw(clusters(max_hosts=max_hosts, max_nodes=max_nodes))
    return {"cluster": cluster_kwargs,
            "requests": draw(request_sets(cluster_kwargs, max_requests=max_requests))}


place_settings = st.fixed_dictionaries({
    "policy": st.sampled_from(POLICIES),
    "numa": st.sampled_from(MODES),
    "order": st.sampled_from(ORDERS),
    "node": st.sampled_from(NODE_CHOICES),
})


def build(instance: dict):
    """(Cluster, Requests) of an instance."""
    c = instance["cluster"]
    cluster = numasched.Cluster(c["node_cpu"], c["node_mem"], c.get("distance"),
                                schedulable=c.get("schedulable"), free_cpu=c.get("free_cpu"),
                                free_mem=c.get("free_mem"))
    return cluster, numasched.Requests(**instance["requests"])


def random_instance(rng: np.random.Generator, hosts: int, nodes: int, n: int) -> dict:
    """A seeded (non-hypothesis) instance with all the features of the strategies."""
    cap_c = rng.choice([0, 4000, 8000, 8000, 16000], size=(hosts, nodes)).astype(np.int64)
    cap_m = rng.choice([0, 8, 16, 16, 32], size=(hosts, nodes)).astype(np.int64) * GiB
    cap_m[(cap_c > 0) & (cap_m == 0) & (rng.random((hosts, nodes)) < 0.5)] = 16 * GiB
    used = rng.random((hosts, nodes)) < 0.4
    free_c = np.where(used, rng.integers(0, cap_c + 1), cap_c).astype(np.int64)
    free_m = np.where(used, rng.integers(0, cap_m + 1), cap_m).astype(np.int64)
    dist = rng.choice([11, 21, 21, 32], size=(hosts, nodes, nodes)).astype(np.int64)
    for h in range(hosts):
        np.fill_diagonal(dist[h], 10)
    cpu = rng.choice([500, 1000, 2000, 4000, 6000, 8001, 12000, 20000, 40000], size=n)
    mem = rng.choice([1, 2, 4, 8, 12, 24, 40], size=n) * GiB + rng.integers(0, 3, size=n)
    numa = [rng.choice([None, "none", "single-numa-node", "restricted", "best-effort", 1, 2])
            for _ in range(n)]
    return {
        "cluster": {"node_cpu": cap_c, "node_mem": cap_m, "distance": dist,
                    "schedulable": rng.random(hosts) < 0.9, "free_cpu": free_c, "free_mem": free_m},
        "requests": {"cpu": cpu.astype(np.int64), "mem": mem.astype(np.int64),
                     "numa": [None if v is None else (v if isinstance(v, str) else int(v))
                              for v in numa],
                     "priority": rng.integers(-1, 2, size=n).astype(np.int64),
                     "required_host": np.where(rng.random(n) < 0.15, rng.integers(0, hosts, n),
                                               -1).astype(np.int64),
                     "vnuma": rng.random(n) < 0.3},
    }


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------
def assert_same_placement(a, b, context: str = "") -> None:
    """Bit-for-bit equality of every result array (values, dtypes and shapes)."""
    for name in RESULT_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, f"{context}{name}: dtype {x.dtype} != {y.dtype}"
        assert x.shape == y.shape, f"{context}{name}: shape {x.shape} != {y.shape}"
        if not np.array_equal(x, y):
            diff = np.argwhere(x != y) if x.ndim else []
            raise AssertionError(f"{context}{name} differs at {diff[:5].tolist()}:\n{x}\nvs\n{y}")


def ref_host(cluster, h: int, free_cpu=None, free_mem=None) -> ref.Host:
    """The reference Host for host h of ``cluster`` with the given (default: capacity) free state."""
    dist = cluster.distance[h if cluster.distance.shape[0] > 1 else 0].tolist()
    fc = cluster.node_cpu[h] if free_cpu is None else free_cpu[h]
    fm = cluster.node_mem[h] if free_mem is None else free_mem[h]
    return ref.Host(cluster.node_cpu[h].tolist(), cluster.node_mem[h].tolist(),
                    [int(x) for x in fc], [int(x) for x in fm], dist,
                    bool(cluster.schedulable[h]))


def expected_modes(requests, numa: str) -> np.ndarray:
    call = codes.NUMA_MODES[numa]
    return np.where(requests.numa == codes.MODE_DEFAULT, call, requests.numa).astype(np.int8)


def mask_of(nodes) -> int:
    return sum(1 << int(k) for k in nodes)


def check_invariants(cluster, requests, placement) -> None:
    """Every invariant of DESIGN.md that can be checked on one finished placement."""
    n, n_hosts, n_nodes = len(requests), cluster.hosts, cluster.nodes
    host, reason = placement.host, placement.reason
    cpu_by, mem_by, nodes = placement.cpu_by_node, placement.mem_by_node, placement.nodes
    free_c, free_m = placement.free_cpu, placement.free_mem

    # Shapes and dtypes of the result.
    assert host.dtype == np.int32 and host.shape == (n,)
    assert cpu_by.dtype == np.int64 and cpu_by.shape == (n, n_nodes)
    assert mem_by.dtype == np.int64 and mem_by.shape == (n, n_nodes)
    assert nodes.dtype == np.uint64 and nodes.shape == (n,)
    assert reason.dtype == np.int8 and reason.shape == (n,)
    assert free_c.dtype == np.int64 and free_c.shape == (n_hosts, n_nodes)
    assert free_m.dtype == np.int64 and free_m.shape == (n_hosts, n_nodes)

    modes = expected_modes(requests, placement.settings["numa"])
    assert np.array_equal(placement.modes, modes)
    node_choice = codes.NODE_CHOICES[placement.settings["node"]]

    # No node overcommitted, and nothing appears on absent nodes.
    assert (free_c >= 0).all() and (free_m >= 0).all(), "a node is overcommitted"
    assert (free_c <= cluster.node_cpu).all() and (free_m <= cluster.node_mem).all()

    # free_after == free_before - sum of allocations per (host, node).
    taken_c = np.zeros((n_hosts, n_nodes), dtype=object)
    taken_m = np.zeros((n_hosts, n_nodes), dtype=object)
    for i in np.flatnonzero(host >= 0):
        taken_c[host[i]] += cpu_by[i].astype(object)
        taken_m[host[i]] += mem_by[i].astype(object)
    assert (cluster.free_cpu.astype(object) - taken_c == free_c.astype(object)).all()
    assert (cluster.free_mem.astype(object) - taken_m == free_m.astype(object)).all()
    # Unschedulable hosts never receive new work.
    for h in range(n_hosts):
        if not cluster.schedulable[h]:
            assert (taken_c[h] == 0).all() and (taken_m[h] == 0).all()

    ever = {}  # (cpu, mem, mode) -> [could_ever_hold per host]

    def could_ever(i):
        key = (int(requests.cpu[i]), int(requests.mem[i]), int(modes[i]))
        if key not in ever:
            ever[key] = [ref_host(cluster, h).could_ever_hold(*key) for h in range(n_hosts)]
        return ever[key]

    final_hosts = [ref_host(cluster, h, free_c, free_m) for h in range(n_hosts)]

    for i in range(n):
        cpu, mem, mode = int(requests.cpu[i]), int(requests.mem[i]), int(modes[i])
        required = int(requests.required_host[i])
        mask = int(nodes[i])
        if host[i] < 0:
            assert host[i] == -1
            assert 1 <= reason[i] <= 5, f"pending request {i} has reason {reason[i]}"
            assert not cpu_by[i].any() and not mem_by[i].any() and mask == 0
            holds = could_ever(i)
            assert (reason[i] == codes.REASON_TOO_LARGE) == (not any(holds)), (i, reason[i])
            if reason[i] != codes.REASON_TOO_LARGE and required >= 0:
                pinned_bad = not cluster.schedulable[required] or not holds[required]
                assert (reason[i] == codes.REASON_CONSTRAINT) == pinned_bad, (i, reason[i])
            elif reason[i] != codes.REASON_TOO_LARGE:
                assert reason[i] != codes.REASON_CONSTRAINT
            eligible = [h for h in range(n_hosts)
                        if cluster.schedulable[h] and required in (-1, h)]
            # The free state only shrinks, so a reason found at the time still holds at the end.
            if reason[i] == codes.REASON_NO_CPU:
                assert all(free_c[h].sum() < cpu for h in eligible), i
            if reason[i] == codes.REASON_NO_MEMORY:
                assert all(free_m[h].sum() < mem for h in eligible), i
            # It does not fit anywhere it may go, even in the final free state.
            for h in eligible:
                found = final_hosts[h].allocation(cpu, mem, mode, node_choice)
                assert found is None, f"pending request {i} fits host {h} at the end: {found}"
            continue

        h = int(host[i])
        assert 0 <= h < n_hosts and reason[i] == codes.PLACED
        assert cluster.schedulable[h], f"request {i} placed on unschedulable host {h}"
        assert required in (-1, h), f"request {i} pinned to {required} but placed on {h}"
        assert (cpu_by[i] >= 0).all() and (mem_by[i] >= 0).all()
        assert int(cpu_by[i].sum()) == cpu and int(mem_by[i].sum()) == mem
        present = cluster.present[h]
        assert not (cpu_by[i][~present].any() or mem_by[i][~present].any()), \
            f"request {i} allocated on an absent node of host {h}"
        present_mask = mask_of(np.flatnonzero(present))
        assert mask != 0 and mask & ~present_mask == 0, f"request {i}: mask {mask:b}"
        chosen = [k for k in range(n_nodes) if (mask >> k) & 1]
        if mode == codes.MODE_NONE:
            nonzero = mask_of(k for k in range(n_nodes) if cpu_by[i, k] or mem_by[i, k])
            assert mask == nonzero, f"request {i}: mask {mask:b} != non-zero nodes {nonzero:b}"
            continue
        width = len(chosen)
        # Equal split over exactly the chosen set; the remainder goes to its lowest ids.
        assert cpu_by[i, chosen].tolist() == ref.split(cpu, width), (i, cpu_by[i])
        assert mem_by[i, chosen].tolist() == ref.split(mem, width), (i, mem_by[i])
        others = [k for k in range(n_nodes) if k not in chosen]
        assert not cpu_by[i, others].any() and not mem_by[i, others].any()
        if mode == codes.MODE_SINGLE:
            assert width == 1, f"single-numa-node request {i} uses {width} nodes"
        elif mode == codes.MODE_RESTRICTED:
            preferred = ref_host(cluster, h).min_nodes(cpu, mem)
            assert width == preferred, \
                f"restricted request {i} uses {width} nodes; kubelet's preferred width is {preferred}"
        # Whatever the width, the set fits the host at capacity.
        assert ref_host(cluster, h).set_fits(chosen, cpu, mem, cluster.node_cpu[h].tolist(),
                                             cluster.node_mem[h].tolist())


def check_summary(placement) -> dict:
    s = placement.summary()
    assert SUMMARY_KEYS <= set(s), f"missing keys: {SUMMARY_KEYS - set(s)}"
    n = len(placement.host)
    assert s["requests"] == n
    assert s["placed"] == int((placement.host >= 0).sum())
    assert s["placed"] + s["pending"] == s["requests"]
    assert sum(s["pending_by_reason"].values()) == s["pending"]
    assert set(s["pending_by_reason"]) <= set(codes.REASONS.values()) - {"placed"}
    assert s["pending_by_reason"] == placement.pending_reasons()
    assert s["hosts"] == placement.cluster.hosts
    assert 0 <= s["hosts_used"] <= s["hosts"]
    assert s["hosts_used"] >= s["hosts_lower_bound"] >= 0
    if s["hosts_used"]:
        assert s["hosts_lower_bound"] >= 1
    assert 0.0 <= s["locality"] <= 1.0 + 1e-12
    assert 0.0 <= s["single_node_fraction"] <= 1.0
    for key in ("cpu_utilisation", "mem_utilisation", "stranded_cpu", "stranded_mem"):
        assert 0.0 <= s[key] <= 1.0 + 1e-12, (key, s[key])
    return s


@pytest.fixture(params=BACKENDS, scope="session")
def backend(request):
    return request.param


# --------------------------------------------------------------------------------------------
# Strategies for the embedding API (one request at a time, another free state for a cluster)
# --------------------------------------------------------------------------------------------
@st.composite
def single_requests(draw, cluster_kwargs: dict):
    """Raw Requests keyword arguments of exactly one request for a cluster, sized like
    ``request_sets`` draws them; sometimes with its own NUMA mode (which overrides the call's)."""
    node_cpu, node_mem = cluster_kwargs["node_cpu"], cluster_kwargs["node_mem"]
    n_hosts, n_nodes = node_cpu.shape
    typical_c = int(np.percentile(node_cpu[node_cpu > 0], 25)) if (node_cpu > 0).any() else 16
    typical_m = int(np.percentile(node_mem[node_mem > 0], 25)) if (node_mem > 0).any() else 16
    host_max_c = int(node_cpu.sum(axis=1).max()) if n_hosts else 16
    host_max_m = int(node_mem.sum(axis=1).max()) if n_hosts else 16
    c, m = draw(_request(typical_c, typical_m, n_nodes, host_max_c, host_max_m))
    kwargs = {"cpu": np.array([c], dtype=np.int64), "mem": np.array([m], dtype=np.int64)}
    if draw(st.integers(0, 3)) == 0:
        kwargs["numa"] = [draw(st.sampled_from([None] + MODES))]
    return kwargs


@st.composite
def free_states(draw, cluster_kwargs: dict):
    """(free_cpu, free_mem) int64 [H, K] for a cluster's capacities: untouched, full or partly
    used nodes, so that ties and nodes with exactly nothing left are common."""
    node_cpu, node_mem = cluster_kwargs["node_cpu"], cluster_kwargs["node_mem"]
    free_cpu = np.zeros_like(node_cpu)
    free_mem = np.zeros_like(node_mem)
    for h in range(node_cpu.shape[0]):
        for k in range(node_cpu.shape[1]):
            kind = draw(st.sampled_from(["free", "free", "full", "part"]))
            for free, cap in ((free_cpu, node_cpu), (free_mem, node_mem)):
                total = int(cap[h, k])
                if kind == "free":
                    free[h, k] = total
                elif kind == "part":
                    free[h, k] = draw(st.integers(0, total))
    return free_cpu, free_mem


# --------------------------------------------------------------------------------------------
# A real etcd server for the store tests: started once per session on a free 127.0.0.1 port
# with a temporary data directory, stopped by its PID. Missing etcd fails under CI=true.
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory):
    from etcd_server import start_etcd, stop_etcd

    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    try:
        yield server.url
    finally:
        stop_etcd(server)
