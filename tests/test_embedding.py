"""The embedding API (filter_hosts, score_hosts, score_batch) agrees with place() exactly.

The contract (numasched/embedding.py): a host passes ``filter_hosts`` exactly where ``place()``
would put the request if that host were the only one allowed; the host with the best
``score_hosts`` (ties to the lowest index) is the host ``place()`` picks for that request alone,
on the same NUMA nodes; scores are 0..100 (kube-scheduler's MaxNodeScore) where feasible and
-1 elsewhere; ``score_batch`` is ``score_hosts`` row by row. Every comparison is against the
reference backend (the executable specification), so this also exercises the Numba kernel's
``score_into`` (run with NUMBA_DISABLE_JIT=1 in CI to cover its body as plain Python).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import _backend, codes, embedding
from numasched.kernels import config, placement
from numasched.policies import Policy

from conftest import (
    GiB,
    MODES,
    NODE_CHOICES,
    ORDERS,
    build,
    clusters,
    examples,
    free_states,
    instances,
    random_instance,
    single_requests,
)

# Most tests here compare the backends, Numba among them (run after the session's warmup).
pytestmark = pytest.mark.numba

# Every host score, presets that fix the NUMA mode or the node choice, and weighted policies
# (unregistered Policy objects pass straight through, as in place()).
POLICY_CHOICES = [
    *codes.HOST_POLICIES,
    "esxi", "binpack", "linux", "kubelet-best-effort", "spread",
    Policy("w-best-fit-3-1", score="best-fit", cpu_weight=3, mem_weight=1),
    Policy("w-dot-1000-7", score="dot-product", cpu_weight=1000, mem_weight=7),
    Policy("w-worst-fit-0-5", score="worst-fit", cpu_weight=0, mem_weight=5),
    Policy("w-best-effort-spread", score="best-fit", numa="best-effort", node="spread",
           cpu_weight=1, mem_weight=1000),
]


def cluster_of(cluster_kwargs: dict, *, free_arg: bool):
    """(Cluster, free) for raw kwargs: the free state inside the Cluster, or (when
    ``free_arg``) a Cluster at full capacity plus the ``free=`` argument of the embedding API."""
    kw = dict(cluster_kwargs)
    free = (kw.pop("free_cpu", None), kw.pop("free_mem", None))
    if not free_arg:
        return numasched.Cluster(kw.pop("node_cpu"), kw.pop("node_mem"), **kw,
                                 free_cpu=free[0], free_mem=free[1]), None
    cluster = numasched.Cluster(kw.pop("node_cpu"), kw.pop("node_mem"), **kw)
    return cluster, (None if free[0] is None else free)


def state(cluster, free):
    """The cluster the embedding API sees: ``free`` applied."""
    return cluster if free is None else cluster.with_free(*free)


def pinned(request_kwargs: dict, h: int) -> numasched.Requests:
    return numasched.Requests(**{**request_kwargs, "required_host": [h]})


def row(requests: numasched.Requests, i: int) -> numasched.Requests:
    """Request i of a batch alone, with its own NUMA override and host pin."""
    return numasched.Requests([int(requests.cpu[i])], [int(requests.mem[i])],
                              numa=[int(requests.numa[i])],
                              required_host=[int(requests.required_host[i])])


def check_scores(s: numasched.HostScores, hosts: int) -> None:
    """Shapes, dtypes and the score scale of one request's HostScores."""
    assert s.score.shape == s.nodes.shape == s.rank.shape == (hosts,)
    assert s.score.dtype == np.int64 and s.nodes.dtype == np.uint64 and s.rank.dtype == np.int64
    ok = s.feasible
    assert np.array_equal(ok, s.score >= 0)
    assert (s.score[~ok] == embedding.INFEASIBLE).all()
    assert (s.nodes[~ok] == 0).all()
    assert (s.nodes[ok] != 0).all()
    assert ((s.score[ok] >= embedding.MIN_SCORE) & (s.score[ok] <= embedding.MAX_SCORE)).all()
    if not ok.any():
        return
    ranks = s.rank[ok]
    best, worst = ranks.max(), ranks.min()
    # Exactly the hosts whose rank equals the best get MAX_SCORE; the worst get MIN_SCORE
    # (others near the worst may round down to it too).
    assert np.array_equal(s.score == embedding.MAX_SCORE, ok & (s.rank == best))
    if best > worst:
        assert (s.score[ok & (s.rank == worst)] == embedding.MIN_SCORE).all()
    # The score is a non-decreasing function of the rank.
    order = np.argsort(ranks, kind="stable")
    assert (np.diff(s.score[ok][order]) >= 0).all()
    for r in np.unique(ranks):
        assert len(set(s.score[ok][ranks == r].tolist())) == 1
    # The extender mapping stays within 0..MAX_EXTENDER_SCORE, the best host at the top.
    ext = s.score[ok] * embedding.MAX_EXTENDER_SCORE // embedding.MAX_SCORE
    assert ext.min() >= 0 and ext.max() == embedding.MAX_EXTENDER_SCORE


def best_host(s: numasched.HostScores) -> int:
    """The host a scheduler picks: the highest score, ties to the lowest index (-1: none)."""
    if not s.feasible.any():
        return -1
    return int(np.argmax(s.score))  # argmax returns the first maximum


# --------------------------------------------------------------------------------------------
# filter_hosts
# --------------------------------------------------------------------------------------------
@settings(max_examples=examples(100))
@given(data=st.data())
def test_filter_hosts_is_place_with_that_host_alone(data):
    cluster_kwargs = data.draw(clusters(), label="cluster")
    request_kwargs = data.draw(single_requests(cluster_kwargs), label="request")
    numa = data.draw(st.sampled_from(MODES), label="numa")
    cluster, free = cluster_of(cluster_kwargs, free_arg=data.draw(st.booleans(), label="free="))
    # A plain (cpu, mem) pair when the request has no NUMA override of its own.
    if "numa" not in request_kwargs and data.draw(st.booleans(), label="as pair"):
        request = (int(request_kwargs["cpu"][0]), int(request_kwargs["mem"][0]))
    else:
        request = numasched.Requests(**request_kwargs)

    passes = numasched.filter_hosts(cluster, request, numa=numa, free=free)
    assert passes.dtype == bool and passes.shape == (cluster.hosts,)
    now = state(cluster, free)
    for h in range(cluster.hosts):
        p = numasched.place(now, pinned(request_kwargs, h), numa=numa, backend="reference")
        assert p.host[0] in (h, -1)
        assert passes[h] == (p.host[0] == h), (h, p.host, p.reason)
    # The filter is the feasibility of every score, whatever the policy.
    for policy in ("best-fit", "dot-product"):
        assert np.array_equal(numasched.score_hosts(cluster, request, policy=policy, numa=numa,
                                                    free=free).feasible, passes)


# --------------------------------------------------------------------------------------------
# score_hosts: the best host is place()'s host, on place()'s nodes
# --------------------------------------------------------------------------------------------
def check_against_place(cluster, request_kwargs, *, policy, numa, node, order="given",
                        free=None) -> numasched.HostScores:
    requests = numasched.Requests(**request_kwargs)
    s = numasched.score_hosts(cluster, requests, policy=policy, numa=numa, node=node, free=free)
    check_scores(s, cluster.hosts)
    now = state(cluster, free)
    p = numasched.place(now, requests, policy=policy, numa=numa, node=node, order=order,
                        backend="reference")
    context = f"policy={policy!r} numa={numa} node={node}: scores {s.score} ranks {s.rank}"
    if not s.feasible.any():
        assert (s.score == embedding.INFEASIBLE).all()
        assert p.host[0] == -1 and p.reason[0] != codes.PLACED, context
    else:
        h = best_host(s)
        assert p.host[0] == h, f"place() chose {p.host[0]}, the best score is host {h}; {context}"
        assert s.nodes[h] == p.nodes[0], context
    # Every host alone: feasible exactly where place() pinned to it places it, on the same nodes.
    for h in range(cluster.hosts):
        alone = numasched.place(now, pinned(request_kwargs, h), policy=policy, numa=numa,
                                node=node, order=order, backend="reference")
        assert s.feasible[h] == (alone.host[0] == h), (h, context)
        if s.feasible[h]:
            assert s.nodes[h] == alone.nodes[0], (h, context)
    return s


@settings(max_examples=examples(200))
@given(data=st.data())
def test_best_score_is_the_host_place_picks(data):
    cluster_kwargs = data.draw(clusters(), label="cluster")
    request_kwargs = data.draw(single_requests(cluster_kwargs), label="request")
    policy = data.draw(st.sampled_from(POLICY_CHOICES), label="policy")
    numa = data.draw(st.sampled_from(MODES), label="numa")
    node = data.draw(st.sampled_from(NODE_CHOICES), label="node")
    order = data.draw(st.sampled_from(ORDERS), label="order")
    cluster, free = cluster_of(cluster_kwargs, free_arg=data.draw(st.booleans(), label="free="))
    check_against_place(cluster, request_kwargs, policy=policy, numa=numa, node=node,
                        order=order, free=free)


@pytest.mark.parametrize("seed", [0, 1])
def test_best_score_is_the_host_place_picks_every_setting(seed):
    """Every policy choice x NUMA mode x node choice, on seeded instances with many hosts,
    partly used nodes, per-host distances and unschedulable hosts."""
    rng = np.random.default_rng(100 + seed)
    inst = random_instance(rng, hosts=8, nodes=[2, 4][seed], n=3)
    cluster, _ = build(inst)
    feasible_somewhere = 0
    for i in range(3):
        request_kwargs = {"cpu": inst["requests"]["cpu"][i:i + 1],
                          "mem": inst["requests"]["mem"][i:i + 1]}
        for policy in POLICY_CHOICES:
            for numa in MODES:
                for node in NODE_CHOICES:
                    s = check_against_place(cluster, request_kwargs, policy=policy, numa=numa,
                                            node=node)
                    feasible_somewhere += bool(s.feasible.any())
    assert feasible_somewhere  # the instances are not trivially infeasible


def test_narrower_set_outranks_a_better_score_under_best_effort():
    """Host 0 is fuller (best-fit prefers it) but only fits the request over two nodes."""
    cluster = numasched.Cluster([[8000, 8000]] * 2, [[32 * GiB] * 2] * 2,
                                free_cpu=[[4000, 4000], [8000, 8000]],
                                free_mem=[[16 * GiB] * 2, [32 * GiB] * 2])
    request = (6000, 8 * GiB)
    expected = {  # numa -> (feasible, best host, nodes per host)
        "single-numa-node": ([False, True], 1, [0, 0b01]),
        "restricted": ([False, True], 1, [0, 0b01]),
        "best-effort": ([True, True], 1, [0b11, 0b01]),
        "none": ([True, True], 0, [0b11, 0b11]),
    }
    for numa, (feasible, best, nodes) in expected.items():
        s = numasched.score_hosts(cluster, request, policy="best-fit", numa=numa)
        check_scores(s, 2)
        assert s.feasible.tolist() == feasible, numa
        assert best_host(s) == best, numa
        assert s.nodes.tolist() == nodes, numa
        assert numasched.filter_hosts(cluster, request, numa=numa).tolist() == feasible
        p = numasched.place(cluster, numasched.Requests([6000], [8 * GiB]), numa=numa)
        assert p.host[0] == best and p.nodes[0] == nodes[best]
    s = numasched.score_hosts(cluster, request, policy="best-fit", numa="best-effort")
    assert s.score.tolist() == [0, 100]
    # rank = score - width * WIDTH_RANK under best-effort, with 0 <= score < WIDTH_RANK
    assert (s.rank // placement.WIDTH_RANK).tolist() == [-2, -1]


def test_scores_follow_the_policy():
    """Three hosts, 25 %, 50 % and 75 % used: best-fit scores the fullest 100, worst-fit the
    emptiest, first-fit scores every feasible host 100; a full host is -1 everywhere."""
    C, M = 16000, 64 * GiB
    used = [0.25, 0.5, 0.75, 1.0]
    cluster = numasched.Cluster(
        [[C, C]] * 4, [[M, M]] * 4,
        free_cpu=[[int(C * (1 - u))] * 2 for u in used],
        free_mem=[[int(M * (1 - u))] * 2 for u in used])
    request = (1000, GiB)
    best = numasched.score_hosts(cluster, request, policy="best-fit")
    worst = numasched.score_hosts(cluster, request, policy="worst-fit")
    first = numasched.score_hosts(cluster, request, policy="first-fit")
    assert best.score.tolist() == [0, 50, 100, -1]
    assert worst.score.tolist() == [100, 50, 0, -1]
    assert first.score.tolist() == [100, 100, 100, -1]
    assert numasched.filter_hosts(cluster, request).tolist() == [True, True, True, False]
    for s in (best, worst, first):
        assert s.nodes.tolist() == [1, 1, 1, 0]
    # The extender verb's 0..10 scale.
    assert (best.score[:3] * embedding.MAX_EXTENDER_SCORE // embedding.MAX_SCORE).tolist() \
        == [0, 5, 10]


def test_the_parity_suite_covers_numba():
    """tests/test_parity.py compares every backend but the reference against it."""
    from conftest import OTHER_BACKENDS

    assert "numba" in OTHER_BACKENDS
    p = numasched.place(numasched.Cluster.uniform(1, 1, 1000, GiB), numasched.Requests([1], [1]),
                        backend="numba")
    assert p.settings["backend"] == "numba" and p.host.tolist() == [0]


def test_kubernetes_constants():
    assert embedding.MAX_SCORE == 100       # framework.MaxNodeScore
    assert embedding.MIN_SCORE == 0         # framework.MinNodeScore
    assert embedding.MAX_EXTENDER_SCORE == 10
    assert embedding.INFEASIBLE == -1
    assert numasched.HostScores is embedding.HostScores


# --------------------------------------------------------------------------------------------
# score_batch
# --------------------------------------------------------------------------------------------
def check_batch_is_row_by_row(cluster, requests, **kw):
    batch = numasched.score_batch(cluster, requests, **kw)
    m, h = len(requests), cluster.hosts
    for name in ("score", "nodes", "rank"):
        arr = getattr(batch, name)
        assert arr.shape == (m, h), name
    assert batch.score.dtype == np.int64 and batch.nodes.dtype == np.uint64
    assert batch.rank.dtype == np.int64
    for i in range(m):
        alone = numasched.score_hosts(cluster, row(requests, i), **kw)
        for name in ("score", "nodes", "rank"):
            assert np.array_equal(getattr(batch, name)[i], getattr(alone, name)), (i, name, kw)
        check_scores(alone, h)
        if requests.required_host[i] >= 0:
            others = np.arange(h) != requests.required_host[i]
            assert not batch.feasible[i, others].any(), i
    return batch


@settings(max_examples=examples(80))
@given(inst=instances(max_requests=8), policy=st.sampled_from(POLICY_CHOICES),
       numa=st.sampled_from(MODES), node=st.sampled_from(NODE_CHOICES))
def test_score_batch_is_score_hosts_row_by_row(inst, policy, numa, node):
    cluster, requests = build(inst)
    check_batch_is_row_by_row(cluster, requests, policy=policy, numa=numa, node=node)


def test_score_batch_seeded_larger():
    """40 requests (NUMA overrides, host pins) on 30 hosts, against score_hosts and place()."""
    rng = np.random.default_rng(5)
    inst = random_instance(rng, hosts=30, nodes=4, n=40)
    cluster, requests = build(inst)
    assert (requests.required_host >= 0).any() and (requests.numa >= 0).any()
    for policy in ("best-fit", "dot-product", "esxi"):
        batch = check_batch_is_row_by_row(cluster, requests, policy=policy, numa="best-effort")
        for i in range(len(requests)):
            p = numasched.place(cluster, row(requests, i), policy=policy, numa="best-effort",
                                backend="reference")
            assert p.host[0] == (np.argmax(batch.score[i]) if batch.feasible[i].any() else -1)


def test_score_batch_same_on_one_and_two_threads():
    """The Numba backend's parallel loop over host chunks gives the serial answer."""
    rng = np.random.default_rng(11)
    inst = random_instance(rng, hosts=150, nodes=2, n=12)  # more hosts than score chunks
    cluster, requests = build(inst)
    before = numba.get_num_threads()
    results = [numasched.score_batch(cluster, requests, policy="balanced", numa="restricted",
                                     backend=COMPILED[0])]
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            results.append(numasched.score_batch(cluster, requests, policy="balanced",
                                                 numa="restricted", backend="numba"))
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        for name in ("score", "nodes", "rank"):
            assert np.array_equal(getattr(r, name), getattr(results[0], name)), name


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_score_batch_from_python_threads(backend):
    """The kernels run without the GIL: concurrent calls from threads give the same answers."""
    from concurrent.futures import ThreadPoolExecutor

    if backend not in _backend.available():
        pytest.skip(f"backend {backend!r} is not built")
    rng = np.random.default_rng(12)
    cluster, requests = build(random_instance(rng, hosts=80, nodes=4, n=10))
    policies = ["best-fit", "worst-fit", "dot-product", "esxi"]
    alone = [numasched.score_batch(cluster, requests, policy=p, backend=backend)
             for p in policies]
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(pool.map(
            lambda p: numasched.score_batch(cluster, requests, policy=p, backend=backend),
            policies))
    for a, b in zip(alone, together):
        for name in ("score", "nodes", "rank"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_score_batch_accepts_a_pair_and_an_empty_batch():
    cluster = numasched.Cluster.uniform(3, 2, 8000, 16 * GiB)
    pair = numasched.score_batch(cluster, (2000, GiB))
    alone = numasched.score_hosts(cluster, (2000, GiB))
    assert pair.score.shape == (1, 3) and np.array_equal(pair.score[0], alone.score)
    empty = numasched.score_batch(cluster, numasched.Requests([], []))
    assert empty.score.shape == empty.nodes.shape == empty.rank.shape == (0, 3)


# --------------------------------------------------------------------------------------------
# Backends: the same arrays on each, and no JIT wait on the default path
# --------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
COMPILED = [b for b in ("cython", "numba") if b in _backend.available()]
needs_core = pytest.mark.skipif(
    "cython" not in _backend.available() and os.environ.get("CI") != "true",
    reason="the Cython kernel is not built (CI requires it)")


@settings(max_examples=examples(40))
@given(inst=instances(max_hosts=5, max_requests=4), policy=st.sampled_from(POLICY_CHOICES),
       numa=st.sampled_from(MODES), node=st.sampled_from(NODE_CHOICES))
def test_every_backend_scores_alike(inst, policy, numa, node):
    """Cython, Numba and the reference give the same arrays, bit for bit; the reference is
    itself held to place() by the tests above (they run on the default backend)."""
    cluster, requests = build(inst)
    want = numasched.score_batch(cluster, requests, policy=policy, numa=numa, node=node,
                                 backend="reference")
    for backend in COMPILED:
        got = numasched.score_batch(cluster, requests, policy=policy, numa=numa, node=node,
                                    backend=backend)
        for name in ("score", "nodes", "rank"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), (backend, name)
    for i in range(len(requests)):
        p = numasched.place(cluster, row(requests, i), policy=policy, numa=numa, node=node,
                            backend="reference")
        best = int(np.argmax(want.score[i])) if want.feasible[i].any() else -1
        assert p.host[0] == best, i
        if best >= 0:
            assert p.nodes[0] == want.nodes[i, best], i


def test_auto_is_cython_when_built():
    assert _backend.resolve("auto") == _backend.available()[0]
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        numasched.score_hosts(CLUSTER, (1000, GiB), backend="gpu")
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        numasched.warmup("gpu")
    assert codes.WIDTH_RANK == placement.WIDTH_RANK
    if "cython" in _backend.available():
        assert _backend._core.WIDTH_RANK == codes.WIDTH_RANK


def test_warmup_returns_the_backend_that_ran():
    for backend in _backend.available():
        assert numasched.warmup(backend) == backend
    assert numasched.warmup() == _backend.available()[0]
    assert numasched.warmup(fill_order=True) == _backend.available()[0]


def _fresh_process(code: str, cache_dir: Path, **env_extra) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter on this checkout with an empty-or-given Numba cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=str(REPO), timeout=300)


@needs_core
def test_first_embedding_call_compiles_nothing(tmp_path):
    """A fresh process with an empty Numba cache: import, filter_hosts and score_hosts on the
    default backend never load Numba, so nothing can be compiled and nothing waits for it."""
    proc = _fresh_process("""
        import sys
        import numasched as ns
        cluster = ns.Cluster.uniform(hosts=3, nodes_per_host=2, cpu_per_node=32_000,
                                     mem_per_node=256 * 2**30)
        ok = ns.filter_hosts(cluster, (8_000, 2**34))
        s = ns.score_hosts(cluster, (8_000, 2**34), policy="balanced", numa="best-effort")
        b = ns.score_batch(cluster, ns.Requests([8_000, 40_000], [2**34, 2**35]))
        print(ok.tolist(), s.score.tolist(), b.score.tolist())
        print("numba loaded:", "numba" in sys.modules)
    """, tmp_path / "numba-cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[True, True, True] [100, 100, 100] "
                                        "[[100, 100, 100], [100, 100, 100]]",
                                        "numba loaded: False"]
    assert "compiling" not in proc.stderr, proc.stderr
    assert not any((tmp_path / "numba-cache").rglob("*.nbi"))  # nothing was cached either


def test_numba_compiles_are_announced_once(tmp_path):
    """The first compile of a numasched kernel in a process prints one line on stderr that
    says what, why and how long; later compiles stay quiet, and so does a cache hit."""
    code = """
        from numasched.kernels import config, placement
        config.compile_reason("backend='numba' was asked for")
        print(placement.ceil_div(7, 2), placement.fx(1, 4))
    """
    cache = tmp_path / "numba-cache"
    first = _fresh_process(code, cache, NUMBA_DISABLE_JIT="0")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["4", "16384"]
    lines = [ln for ln in first.stderr.splitlines() if ln.startswith("numasched:")]
    assert lines == [config.notice_text("numasched.kernels.placement.ceil_div",
                                        "backend='numba' was asked for").rstrip("\n")]
    assert "about a minute" in lines[0] and "numasched.warmup(" in lines[0]
    again = _fresh_process(code, cache, NUMBA_DISABLE_JIT="0")   # loads from the cache
    assert again.returncode == 0, again.stderr
    assert "numasched:" not in again.stderr, again.stderr


# --------------------------------------------------------------------------------------------
# free=
# --------------------------------------------------------------------------------------------
@settings(max_examples=examples(40))
@given(data=st.data())
def test_free_argument_is_with_free(data):
    cluster_kwargs = data.draw(clusters(), label="cluster")
    free_cpu, free_mem = data.draw(free_states(cluster_kwargs), label="free")
    request_kwargs = data.draw(single_requests(cluster_kwargs), label="request")
    policy = data.draw(st.sampled_from(POLICY_CHOICES), label="policy")
    numa = data.draw(st.sampled_from(MODES), label="numa")
    cluster, _ = build({"cluster": cluster_kwargs, "requests": request_kwargs})
    after = cluster.with_free(free_cpu, free_mem)
    request = numasched.Requests(**request_kwargs)
    copies = free_cpu.copy(), free_mem.copy()
    as_lists = (free_cpu.tolist(), free_mem.tolist())
    # (nested lists cannot carry the shape (0, K) of a cluster without hosts)
    for free in [(free_cpu, free_mem)] + ([as_lists] if cluster.hosts else []):
        got = numasched.score_hosts(cluster, request, policy=policy, numa=numa, free=free)
        want = numasched.score_hosts(after, request, policy=policy, numa=numa)
        for name in ("score", "nodes", "rank"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
        assert np.array_equal(numasched.filter_hosts(cluster, request, numa=numa, free=free),
                              numasched.filter_hosts(after, request, numa=numa))
        batch = numasched.score_batch(cluster, request, policy=policy, numa=numa, free=free)
        assert np.array_equal(batch.score[0], want.score)
    # The caller's arrays are only read.
    assert np.array_equal(free_cpu, copies[0]) and np.array_equal(free_mem, copies[1])


def test_free_state_is_only_read():
    cluster = numasched.Cluster.uniform(2, 2, 8000, 16 * GiB)
    free_cpu = np.array([[8000, 1000], [4000, 4000]], dtype=np.int64)
    free_mem = np.array([[16 * GiB, GiB], [8 * GiB, 8 * GiB]], dtype=np.int64)
    copies = free_cpu.copy(), free_mem.copy()
    s = numasched.score_hosts(cluster, (3000, 2 * GiB), free=(free_cpu, free_mem))
    assert s.feasible.tolist() == [True, True]
    assert np.array_equal(free_cpu, copies[0]) and np.array_equal(free_mem, copies[1])
    assert np.array_equal(cluster.free_cpu, cluster.node_cpu)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
CLUSTER = numasched.Cluster.uniform(2, 2, 8000, 16 * GiB)


@pytest.mark.parametrize("fn", [numasched.score_hosts, numasched.filter_hosts])
def test_more_than_one_request_is_refused(fn):
    with pytest.raises(ValueError, match="one request"):
        fn(CLUSTER, numasched.Requests([1000, 2000], [GiB, GiB]))
    with pytest.raises(ValueError, match="one request"):
        fn(CLUSTER, numasched.Requests([], []))


@pytest.mark.parametrize("fn", [numasched.score_hosts, numasched.filter_hosts,
                                numasched.score_batch])
@pytest.mark.parametrize("bad", [(1000, GiB, 1), "1000,1", {"cpu": 1000, "mem": GiB}, None, 1000,
                                 ([1000], [GiB]), np.array([1000, GiB]), (1000,)],
                         ids=["triple", "str", "dict", "None", "int", "pair-of-lists", "array",
                              "single"])
def test_a_request_that_is_not_a_pair_or_requests_is_refused(fn, bad):
    with pytest.raises(ValueError, match="Requests or a"):
        fn(CLUSTER, bad)


@pytest.mark.parametrize("bad", [(0, GiB), (1000, -1), (1.5, GiB), (True, GiB), (None, None)])
def test_a_pair_with_bad_amounts_is_refused_like_requests(bad):
    with pytest.raises(ValueError):
        numasched.score_hosts(CLUSTER, bad)


@pytest.mark.parametrize("fn", [numasched.score_hosts, numasched.score_batch])
def test_unknown_policy_lists_the_known_names(fn):
    with pytest.raises(ValueError, match="unknown policy 'no-such-policy'") as err:
        fn(CLUSTER, (1000, GiB), policy="no-such-policy")
    for name in ("first-fit", "best-fit", "worst-fit", "balanced", "dot-product", "esxi",
                 "binpack"):
        assert repr(name) in str(err.value)


def test_unknown_numa_mode_and_node_choice_are_refused():
    with pytest.raises(ValueError, match="numa mode"):
        numasched.score_hosts(CLUSTER, (1000, GiB), numa="sometimes")
    with pytest.raises(ValueError, match="numa mode"):
        numasched.filter_hosts(CLUSTER, (1000, GiB), numa="sometimes")
    with pytest.raises(ValueError, match="node choice"):
        numasched.score_hosts(CLUSTER, (1000, GiB), node="scatter")


@pytest.mark.parametrize("fn", [numasched.score_hosts, numasched.filter_hosts,
                                numasched.score_batch])
def test_required_host_out_of_range_is_refused(fn):
    with pytest.raises(ValueError, match=r"required_host\[0\] = 2 is not a host index"):
        fn(CLUSTER, numasched.Requests([1000], [GiB], required_host=[2]))


def test_required_host_out_of_range_in_a_batch_names_the_request():
    with pytest.raises(ValueError, match=r"required_host\[1\] = 7"):
        numasched.score_batch(CLUSTER, numasched.Requests([1, 1], [1, 1], required_host=[0, 7]))
    with pytest.raises(ValueError, match="required_host"):
        numasched.Requests([1000], [GiB], required_host=[-2])


def test_bad_free_state_is_refused():
    with pytest.raises(ValueError, match="free"):
        numasched.score_hosts(CLUSTER, (1000, GiB), free=(CLUSTER.free_cpu,))
    with pytest.raises(ValueError, match="exceeds"):
        numasched.score_hosts(CLUSTER, (1000, GiB), free=(CLUSTER.free_cpu + 1, CLUSTER.free_mem))
    with pytest.raises(ValueError, match="shape"):
        numasched.filter_hosts(CLUSTER, (1000, GiB),
                               free=(CLUSTER.free_cpu[:1], CLUSTER.free_mem[:1]))


@pytest.mark.parametrize("fn", [numasched.score_hosts, numasched.filter_hosts,
                                numasched.score_batch])
def test_a_cluster_that_is_not_a_cluster_is_refused(fn):
    """Like place(): bad input is a ValueError naming the field, not an AttributeError."""
    with pytest.raises(ValueError, match="cluster"):
        fn("not a cluster", (1000, GiB))


@pytest.mark.parametrize("fn", [numasched.score_hosts, numasched.filter_hosts,
                                numasched.score_batch])
def test_zero_hosts(fn):
    """A scheduler asking about an empty host list gets empty answers (place() places nothing
    there and says why; it does not raise)."""
    no_hosts = numasched.Cluster(np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
    out = fn(no_hosts, (1000, GiB))
    arrays = [out] if isinstance(out, np.ndarray) else list(out)
    for arr in arrays:
        assert arr.shape[-1] == 0


# --------------------------------------------------------------------------------------------
# The README example ("Embedding in a scheduler"), verbatim in spirit
# --------------------------------------------------------------------------------------------
def test_readme_embedding_example():
    ns = numasched
    cluster = ns.Cluster.uniform(hosts=3, nodes_per_host=2, cpu_per_node=32_000,
                                 mem_per_node=256 * GiB)
    free_cpu = np.array([[4_000, 32_000], [32_000, 32_000], [0, 0]])
    free_mem = np.array([[64 * GiB, 256 * GiB], [256 * GiB, 256 * GiB], [0, 0]])
    pod = (8_000, 16 * GiB)
    assert ns.filter_hosts(cluster, pod, free=(free_cpu, free_mem)).tolist() == [True, True, False]
    s = ns.score_hosts(cluster, pod, policy="best-fit", numa="restricted",
                       free=(free_cpu, free_mem))
    assert s.score.tolist() == [100, 0, -1]
    assert [bin(int(m)) for m in s.nodes] == ["0b10", "0b1", "0b0"]
    batch = ns.score_batch(cluster, ns.Requests(cpu=[8_000, 48_000], mem=[16 * GiB, 64 * GiB]),
                           free=(free_cpu, free_mem))
    assert batch.score.tolist() == [[100, 0, -1], [-1, 100, -1]]
    assert [bin(int(m)) for m in batch.nodes[1]] == ["0b0", "0b11", "0b0"]
