"""Policies as objects: presets keep the placement contract, the registry, validation, and the
NUMA behaviour that defines esxi and linux."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import codes, policies
from numasched.evaluation import workloads
from numasched.policies import Policy, Registry

from conftest import (
    BACKENDS,
    GiB,
    ORDERS,
    MODES,
    NODE_CHOICES,
    assert_same_placement,
    build,
    check_invariants,
    check_summary,
    examples,
    instances,
)

PRESETS = ("esxi", "kubelet-single-numa-node", "kubelet-restricted", "kubelet-best-effort",
           "linux", "binpack", "spread")
FAST = next((b for b in BACKENDS if b != "reference"), "reference")

open_settings = st.fixed_dictionaries({
    "numa": st.sampled_from(MODES),
    "order": st.sampled_from(ORDERS),
    "node": st.sampled_from(NODE_CHOICES),
})


def test_every_preset_and_score_is_registered():
    names = policies.names()
    assert set(PRESETS) <= set(names)
    assert set(codes.HOST_POLICIES) <= set(names)
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------------------------
# Every registered policy keeps the contract, and the backends agree on it
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", policies.names())
@settings(max_examples=examples(12))
@given(inst=instances(max_hosts=5, max_nodes=4, max_requests=10), kw=open_settings)
def test_policy_satisfies_the_invariants_and_matches_the_reference(name, inst, kw):
    cluster, requests = build(inst)
    p = numasched.place(cluster, requests, policy=name, backend=FAST, **kw)
    check_invariants(cluster, requests, p)
    check_summary(p)
    assert p.settings["policy"] == name
    assert p.settings["score"] == policies.get(name).score
    r = numasched.place(cluster, requests, policy=name, backend="reference", **kw)
    assert_same_placement(p, r, f"{name} {FAST} vs reference: ")


@pytest.mark.parametrize("name", PRESETS)
def test_policy_by_name_equals_policy_object(name):
    cluster = workloads.demo_cluster(20)
    requests = workloads.mixed(150, 150, seed=3)
    by_name = numasched.place(cluster, requests, policy=name)
    by_object = numasched.place(cluster, requests, policy=policies.get(name))
    assert_same_placement(by_name, by_object, f"{name}: ")


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def test_registry_refuses_duplicates():
    reg = Registry()
    reg.register(Policy("mine", score="worst-fit"))
    with pytest.raises(ValueError, match="'mine' is already registered"):
        reg.register(Policy("mine", score="best-fit"))
    assert reg.names() == ["mine"] and reg.get("mine").score == "worst-fit"
    with pytest.raises(ValueError, match="already registered"):
        policies.register(Policy("esxi"))  # the global registry too
    assert policies.get("esxi").numa == "restricted"


def test_registry_refuses_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown policy 'nope'") as err:
        policies.get("nope")
    for name in policies.names():
        assert repr(name) in str(err.value)
    cluster, requests = numasched.Cluster.uniform(1, 1, 4, 4), numasched.Requests([1], [1])
    with pytest.raises(ValueError, match="unknown policy 'kubelet-none'.*'esxi'"):
        numasched.place(cluster, requests, policy="kubelet-none")
    with pytest.raises(ValueError, match="unknown policy"):
        numasched.place(cluster, requests, policy=3)
    reg = Registry()
    with pytest.raises(ValueError, match="only numasched.policies.Policy"):
        reg.register("esxi")


def test_registry_lookup_and_iteration():
    reg = Registry()
    a, b = reg.register(Policy("a")), reg.register(Policy("b", score="first-fit"))
    assert "a" in reg and "c" not in reg
    assert list(reg) == [a, b]
    assert reg.get(b) is b  # a Policy passes through
    with pytest.raises(ValueError, match="known: 'a', 'b'"):
        reg.get("c")


# --------------------------------------------------------------------------------------------
# Policy validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,field", [
    ({"score": "fastest-fit"}, "score"),
    ({"score": None}, "score"),
    ({"numa": "numa-aware"}, "numa"),
    ({"node": "scatter"}, "node"),
    ({"order": "increasing"}, "order"),
    ({"cpu_weight": -1}, "cpu_weight"),
    ({"cpu_weight": 1001}, "cpu_weight"),
    ({"cpu_weight": 1.5}, "cpu_weight"),
    ({"cpu_weight": True}, "cpu_weight"),
    ({"mem_weight": -3}, "mem_weight"),
    ({"mem_weight": "1"}, "mem_weight"),
    ({"cpu_weight": 0, "mem_weight": 0}, "cpu_weight and mem_weight"),
])
def test_policy_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Policy("bad", **kwargs)


@pytest.mark.parametrize("name", ["", None, 7])
def test_policy_needs_a_name(name):
    with pytest.raises(ValueError, match="name"):
        Policy(name)


def test_policy_weights_at_the_limits_are_accepted():
    Policy("w", cpu_weight=0, mem_weight=1000)
    Policy("w", cpu_weight=1000, mem_weight=0)


def test_policy_is_immutable():
    with pytest.raises(AttributeError):
        policies.get("esxi").numa = "none"


# --------------------------------------------------------------------------------------------
# Fixed fields win, open fields take the call's arguments
# --------------------------------------------------------------------------------------------
CALL = {"numa": "none", "node": "pack", "order": "given"}


@pytest.mark.parametrize("name", PRESETS)
def test_fixed_fields_win_and_open_fields_follow_the_call(name):
    policy = policies.get(name)
    cluster = numasched.Cluster.uniform(2, 2, 8000, 16 * GiB)
    requests = numasched.Requests([2000, 12000], [4 * GiB, 8 * GiB])
    for call in (CALL, {"numa": "best-effort", "node": "spread", "order": "decreasing"}):
        p = numasched.place(cluster, requests, policy=name, **call)
        for field in ("numa", "node", "order"):
            fixed = getattr(policy, field)
            assert p.settings[field] == (fixed if fixed is not None else call[field]), (name, field)
        assert p.settings["score"] == policy.score


def test_specific_presets_fix_what_defines_them():
    cluster = numasched.Cluster.uniform(2, 2, 8000, 16 * GiB)
    requests = numasched.Requests([2000], [4 * GiB])
    esxi = numasched.place(cluster, requests, policy="esxi", numa="none", node="pack",
                           order="given")
    assert (esxi.settings["numa"], esxi.settings["node"], esxi.settings["order"]) == \
        ("restricted", "spread", "given")
    linux = numasched.place(cluster, requests, policy="linux", numa="single-numa-node")
    assert linux.settings["numa"] == "none"
    binpack = numasched.place(cluster, requests, policy="binpack", order="given",
                              numa="single-numa-node")
    assert binpack.settings["order"] == "decreasing"
    assert binpack.settings["numa"] == "single-numa-node"
    spread = numasched.place(cluster, requests, policy="spread", node="pack")
    assert (spread.settings["score"], spread.settings["node"]) == ("worst-fit", "spread")


def test_an_unregistered_policy_object_is_accepted():
    mine = Policy("mine", score="worst-fit", numa="single-numa-node", cpu_weight=3, mem_weight=1)
    cluster = numasched.Cluster.uniform(3, 2, 8000, 16 * GiB)
    requests = numasched.Requests([2000, 2000], [4 * GiB, 4 * GiB])
    p = numasched.place(cluster, requests, policy=mine, numa="none")
    assert p.settings["policy"] == "mine" and p.settings["numa"] == "single-numa-node"
    assert p.settings["weights"] == (3, 1)
    assert "mine" not in policies.names()
    check_invariants(cluster, requests, p)
    assert p.host.tolist() == [0, 1]  # worst-fit spreads over hosts


def test_compile_gives_codes_and_weights():
    c = policies.get("esxi").compile(numa="none", node="pack", order="given")
    assert c == (codes.POLICY_BEST_FIT, codes.MODE_RESTRICTED, codes.NODE_SPREAD,
                 codes.ORDER_GIVEN, 1, 1)
    with pytest.raises(ValueError, match="numa mode"):
        policies.get("binpack").compile(numa="sideways", node="pack", order="given")


# --------------------------------------------------------------------------------------------
# esxi keeps whatever fits a node on one node; linux spreads
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def azure_2node():
    """2,500 Azure-mix VMs and 2,500 containers on 200 hosts of 2 x 32 cores x 256 GiB (about
    80 % of the CPU: everything fits under both policies)."""
    return workloads.demo_cluster(200), workloads.mixed(2500, 2500, seed=11)


def _popcount(masks: np.ndarray) -> np.ndarray:
    return np.array([bin(int(m)).count("1") for m in masks])


def test_esxi_puts_every_request_that_fits_a_node_on_one_node(azure_2node):
    cluster, mix = azure_2node
    # The Azure mix tops out at 16 vCPU; add VMs wider than a node (48 vCPU / 300 GiB, 40 vCPU).
    wide_vms = numasched.Requests([48000] * 4 + [40000] * 4, [300 * GiB] * 4 + [64 * GiB] * 4,
                                  vnuma=[True] * 8)
    requests = workloads.concat(mix, wide_vms)
    p = numasched.place(cluster, requests, policy="esxi")
    assert p.placed.all()
    fits_a_node = ((requests.cpu <= cluster.node_cpu.max())
                   & (requests.mem <= cluster.node_mem.max()))
    assert fits_a_node.sum() == len(mix)
    widths = _popcount(p.nodes)
    assert (widths[fits_a_node] == 1).all()
    assert (widths[~fits_a_node] == 2).all()   # wider VMs: equal NUMA clients on both nodes
    wide = np.flatnonzero(~fits_a_node)
    assert np.abs(p.cpu_by_node[wide, 0] - p.cpu_by_node[wide, 1]).max() <= 1
    assert np.abs(p.mem_by_node[wide, 0] - p.mem_by_node[wide, 1]).max() <= 1
    assert check_summary(p)["locality"] >= 0.99


def test_esxi_balances_nodes_and_kubelet_packs_them():
    """One host, two 1-vCPU requests: esxi (spread) puts them on different nodes, the kubelet
    presets (pack) on the same one."""
    cluster = numasched.Cluster.uniform(1, 2, 8000, 16 * GiB)
    requests = numasched.Requests([1000, 1000], [GiB, GiB])
    esxi = numasched.place(cluster, requests, policy="esxi")
    assert sorted(esxi.nodes.tolist()) == [0b01, 0b10]
    for name in ("kubelet-restricted", "kubelet-best-effort", "kubelet-single-numa-node"):
        assert numasched.place(cluster, requests, policy=name).nodes.tolist() == [0b01, 0b01]


def test_linux_spreads_every_request_over_all_nodes_of_its_host(azure_2node):
    cluster, requests = azure_2node
    p = numasched.place(cluster, requests, policy="linux")
    assert p.placed.all()
    present = np.array([sum(1 << k for k in np.flatnonzero(cluster.present[h]))
                        for h in range(cluster.hosts)], dtype=np.uint64)
    assert (p.nodes == present[p.host]).all()
    assert (p.cpu_by_node > 0).all() and (p.mem_by_node > 0).all()
    assert check_summary(p)["single_node_fraction"] == 0.0


def test_linux_spread_follows_free_capacity():
    """Node 0 has 6 cores free, node 1 has 2: a 4-core request takes 3 + 1."""
    cluster = numasched.Cluster([[8000, 8000]], [[16 * GiB, 16 * GiB]],
                                free_cpu=[[6000, 2000]], free_mem=[[8 * GiB, 8 * GiB]])
    p = numasched.place(cluster, numasched.Requests([4000], [4 * GiB]), policy="linux")
    assert p.cpu_by_node.tolist() == [[3000, 1000]]
    assert p.mem_by_node.tolist() == [[2 * GiB, 2 * GiB]]
    check_invariants(cluster, p.requests, p)


def test_local_fraction_on_the_2node_azure_mix(azure_2node):
    cluster, requests = azure_2node
    esxi = numasched.place(cluster, requests, policy="esxi").summary()
    linux = numasched.place(cluster, requests, policy="linux").summary()
    assert esxi["locality"] >= 0.99
    assert 0.45 <= linux["locality"] <= 0.55
    assert esxi["placed"] == linux["placed"] == len(requests)


def test_local_fraction_on_azure_vms_alone():
    cluster, requests = workloads.demo_cluster(150), workloads.azure_vm_mix(2000, seed=5)
    esxi = numasched.place(cluster, requests, policy="esxi").summary()
    linux = numasched.place(cluster, requests, policy="linux").summary()
    assert esxi["placed"] == linux["placed"] == len(requests)
    assert esxi["locality"] >= 0.99
    assert 0.45 <= linux["locality"] <= 0.55


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(0, 60), span=st.sampled_from([0, 3, 1 << 10, 1 << 20, 1 << 62]),
       shares=st.sampled_from([(0, 1 << 16), (100, 20000), (1 << 16, 1 << 16)]))
def test_decreasing_order_fast_sorts_are_the_three_key_sort(data, n, span, shares):
    # Every path of the decreasing sort gives the reference's rule (priority high first, then
    # share, then index): one 16-bit radix pass (a narrow key range), two (up to 32 bits: a full
    # share range, priority gaps up to 2**15), the packed 64-bit sort (gaps to 2**20) and the
    # lexsort fallback (gaps that do not fit).
    from numasched.api import _sort_decreasing

    share = np.array(data.draw(st.lists(st.integers(*shares), min_size=n, max_size=n)),
                     dtype=np.int64)
    lo = -(span // 2)
    priority = np.array(data.draw(st.lists(st.integers(lo, lo + span), min_size=n, max_size=n)),
                        dtype=np.int64)
    expected = sorted(range(n), key=lambda i: (-int(priority[i]), -int(share[i]), i))
    got = _sort_decreasing(priority, share)
    assert got.dtype == np.int64 and got.tolist() == expected
