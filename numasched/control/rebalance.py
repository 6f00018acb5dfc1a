"""Rebalancing inside the controller: plans over what runs now, applied as migrations.

``plan(controller, ...)`` builds ``numasched.rebalance``'s migration plan over every Running
workload (the pool as ``Controller.cluster()`` sees it) and names each move: the workload, the
host and NUMA nodes it leaves and the ones it goes to, and how it moves:

- a **VirtualMachine migrates live**: it stays Running while its target is reserved, then its
  binding moves to the target host and nodes (event ``Migrated``);
- a **Pod is evicted and re-placed** on the capacity the plan reserved for it (events
  ``Evicted`` then ``Scheduled``, both saying "rebalance"); a Pod of a Deployment counts against
  the Deployment's ``spec.strategy.rollingUpdate.maxUnavailable`` (an integer or a percentage of
  ``replicas``, rounded down; Kubernetes' default 25 %): a plan never moves more of one
  Deployment's replicas than that.

``apply(controller, plan)`` performs the moves in order. Every move is re-checked against the
store before it is made (the workload is still bound where the plan found it, and the target
nodes still have room with both copies held); the first that no longer holds stops the rest,
so a plan computed earlier is never applied over a changed state.

``Periodic`` is the controller's periodic mode (``Controller(rebalance_every=...)``): every
``every`` reconcile rounds, when the imbalance of the objective exceeds ``threshold``, a plan
of at most ``max_moves`` moves is applied (as ESXi re-examines NUMA placement every 2 s and
migrates when nodes are more than 10 % out of balance). Imbalance: ``hosts``: hosts in use over
the lower bound, minus one; ``locality``: one minus locality; ``stranded``: stranded CPU plus
memory; ``pending``: the share of Pending workloads.

``evict_underused(controller, ...)`` is the descheduler-like baseline on the controller: evict
every workload of the least used hosts under a utilisation threshold; the next reconcile lets
the scheduler place them again (possibly on the same host).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..optimize import rebalance as rb
from .atomic import reading, transaction
from .store import KIND_VM, READY, REASON_NEW

DEFAULT_MAX_UNAVAILABLE = "25%"


@dataclass(frozen=True)
class Step:
    """One named move: ``kind``/``namespace``/``name`` of the workload, ``action`` ``migrate``
    (a VM) or ``evict`` (a Pod, re-placed on its reserved target)."""

    step: int
    kind: str
    namespace: str
    name: str
    action: str
    source: str
    target: str
    source_nodes: tuple[int, ...]
    target_nodes: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"step": self.step, "kind": self.kind, "namespace": self.namespace,
                "name": self.name, "action": self.action, "from": self.source,
                "to": self.target, "from_nodes": list(self.source_nodes),
                "to_nodes": list(self.target_nodes)}


@dataclass(frozen=True, eq=False)
class ControllerPlan:
    """A plan over the controller's Running workloads: ``steps`` (named moves), the underlying
    ``numasched.Plan`` (``plan``), and whether it was ``applied``."""

    steps: tuple[Step, ...]
    plan: object
    applied: bool
    rows: np.ndarray = field(repr=False)        # store row of each request of ``plan``
    uids: np.ndarray = field(repr=False)        # their uids (rows move on compaction)
    host_rows: np.ndarray = field(repr=False)   # store host row of each cluster host

    @property
    def before(self) -> dict:
        return self.plan.before

    @property
    def after(self) -> dict:
        return self.plan.after

    def __len__(self) -> int:
        return len(self.steps)

    def as_dict(self) -> dict:
        return {"objective": self.plan.objective, "applied": self.applied,
                "moves": [s.as_dict() for s in self.steps],
                "before": self.plan.before, "after": self.plan.after}

    def __repr__(self) -> str:
        return (f"ControllerPlan({len(self.steps)} moves, objective={self.plan.objective!r}, "
                f"{self.plan.before['objective']:g} -> {self.plan.after['objective']:g}, "
                f"applied={self.applied})")


def max_unavailable(manifest: dict, replicas: int) -> int:
    """A Deployment's ``spec.strategy.rollingUpdate.maxUnavailable`` as a count (a percentage of
    ``replicas`` rounds down, as Kubernetes does); ``ValueError`` naming the field."""
    spec = manifest.get("spec") or {}
    strategy = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    value = strategy.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    where = "spec.strategy.rollingUpdate.maxUnavailable"
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected an integer or a percentage, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{where}: must be >= 0, got {value}")
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            share = float(value[:-1])
        except ValueError:
            share = -1.0
        if 0 <= share <= 100:
            return math.floor(replicas * share / 100 + 1e-9)
    raise ValueError(f"{where}: expected an integer or a percentage, got {value!r}")


def _running(controller):
    """(Placement of every Running workload, their store rows, the cluster's host rows, their
    Deployment group ids, each group's move cap)."""
    from ..api import Cluster

    st = controller._store
    rows = st.rows
    cluster, host_rows = controller._cluster()
    idx = np.flatnonzero(rows.view("live") & (rows.view("host") >= 0))
    position = np.searchsorted(host_rows, rows.host[idx]).astype(np.int32)
    cpu_by, mem_by = rows.cpu_by[idx], rows.mem_by[idx]
    free_c, free_m = np.array(cluster.free_cpu), np.array(cluster.free_mem)
    np.add.at(free_c, position, cpu_by)
    np.add.at(free_m, position, mem_by)
    base = Cluster(cluster.node_cpu, cluster.node_mem, cluster.distance,
                   schedulable=cluster.schedulable, free_cpu=free_c, free_mem=free_m)
    requests = controller._requests(idx)
    state = rb.running_state(base, requests, position, cpu_by, mem_by,
                             policy=controller.policy, numa=controller.numa, node=controller.node)
    owner = rows.owner[idx]
    groups = np.full(idx.size, -1, dtype=np.int64)
    caps = []
    for dep_id in np.unique(owner[owner >= 0]).tolist():
        dep = st.deployments.get(st.deployment_names[dep_id])
        cap = max_unavailable(dep.manifest, dep.spec.replicas) if dep is not None else 0
        groups[owner == dep_id] = len(caps)
        caps.append(cap)
    return state, idx, host_rows, groups, np.array(caps, dtype=np.int64)


@reading
def plan(controller, *, max_moves: int = 10, objective: str = "hosts", pending=None,
         effort: float = 1.0, seed: int = 0) -> ControllerPlan:
    """The migration plan over the controller's Running workloads (nothing is changed)."""
    state, idx, host_rows, groups, caps = _running(controller)
    if objective == "pending" and pending is None:
        pending = _pending_requests(controller)
    p = rb.rebalance(state, objective=objective, max_moves=max_moves, pending=pending,
                     effort=effort, seed=seed, groups=groups, group_moves=caps)
    st = controller._store
    rows, names = st.rows, st.hosts.names
    steps = []
    for m in p.moves:
        r = int(idx[m.request])
        kind, namespace, name = st.key_of_row(r)
        steps.append(Step(m.step, kind, namespace, name,
                          "migrate" if rows.kind[r] == KIND_VM else "evict",
                          names[int(host_rows[m.source])], names[int(host_rows[m.target])],
                          m.source_nodes, m.target_nodes))
    return ControllerPlan(tuple(steps), p, False, idx, rows.uid[idx].copy(), host_rows)


def _pending_requests(controller):
    st = controller._store
    rows = st.rows
    pending = np.flatnonzero(rows.view("live") & (rows.view("host") < 0))
    return controller._requests(pending) if pending.size else None


@transaction
def apply(controller, planned: ControllerPlan) -> ControllerPlan:
    """Perform ``planned``'s moves in order (module docstring); returns the plan marked applied
    with the steps actually made (a prefix of the plan)."""
    st = controller._store
    rows, hosts = st.rows, st.hosts
    made = []
    for step, m in zip(planned.steps, planned.plan.moves):
        r = rows.row_of(int(planned.uids[m.request]))
        src, dst = int(planned.host_rows[m.source]), int(planned.host_rows[m.target])
        if r < 0 or not rows.live[r] or int(rows.host[r]) != src or hosts.state[dst] != READY:
            break
        width = st.width
        want_c = np.zeros(width, dtype=np.int64)
        want_m = np.zeros(width, dtype=np.int64)
        want_c[: len(m.cpu_by_node)] = m.cpu_by_node
        want_m[: len(m.mem_by_node)] = m.mem_by_node
        # Both copies held: the target must have room before the source is released.
        if (hosts.free_cpu[dst] < want_c).any() or (hosts.free_mem[dst] < want_m).any():
            break
        hosts.free_cpu[dst] -= want_c
        hosts.free_mem[dst] -= want_m
        hosts.free_cpu[src] += rows.cpu_by[r]
        hosts.free_mem[src] += rows.mem_by[r]
        rows.cpu_by[r] = want_c
        rows.mem_by[r] = want_m
        rows.nodes[r] = np.uint64(sum(1 << k for k in m.target_nodes))
        rows.host[r] = dst
        rows.rv[r] = st.bump()
        where = (f"from {step.source} (NUMA nodes {list(step.source_nodes)}) to {step.target} "
                 f"(NUMA nodes {list(step.target_nodes)})")
        if step.action == "migrate":
            st.event("Normal", "Migrated", step.kind, step.namespace, step.name,
                     f"rebalance: live-migrated {where}")
        else:
            st.event("Normal", "Evicted", step.kind, step.namespace, step.name,
                     f"rebalance: evicted from {step.source} to be re-placed")
            st.event("Normal", "Scheduled", step.kind, step.namespace, step.name,
                     f"rebalance: re-placed {where}")
        made.append(step)
    if len(made) < len(planned.steps):
        st.event("Warning", "RebalanceStopped", "Host", None, planned.steps[len(made)].source,
                 f"rebalance: {len(made)} of {len(planned.steps)} moves made; the state changed "
                 f"since the plan")
    return ControllerPlan(tuple(made), planned.plan, True, planned.rows, planned.uids,
                          planned.host_rows)


def imbalance(summary: dict, objective: str, pending_share: float = 0.0) -> float:
    """How far the state is from the objective's ideal (module docstring)."""
    if objective == "hosts":
        bound = summary["hosts_lower_bound"]
        return summary["hosts_used"] / bound - 1.0 if bound else 0.0
    if objective == "locality":
        return 1.0 - summary["locality"] if summary["placed"] else 0.0
    if objective == "stranded":
        return summary["stranded_cpu"] + summary["stranded_mem"]
    return pending_share


@dataclass(frozen=True)
class Periodic:
    """The periodic mode: every ``every`` reconcile rounds, when ``imbalance`` > ``threshold``,
    apply a plan of at most ``max_moves`` moves for ``objective``."""

    every: int
    threshold: float = 0.1
    max_moves: int = 10
    objective: str = "hosts"

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"rebalance_every must be a positive integer (reconcile rounds), "
                             f"got {self.every!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0 <= self.threshold:
            raise ValueError(f"rebalance_threshold must be a number >= 0, got {self.threshold!r}")
        rb._check_int(self.max_moves, "rebalance_moves", 1)
        if self.objective not in rb.OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; known: "
                             + ", ".join(repr(o) for o in rb.OBJECTIVES))

    def due(self, round_: int) -> bool:
        return round_ % self.every == 0

    def run(self, controller):
        """The plan applied this round, or None when the state is balanced enough."""
        st = controller._store
        rows = st.rows
        live = rows.view("live")
        n_live = int(live.sum())
        if n_live == 0:
            return None
        state = _running(controller)[0]
        share = float((live & (rows.view("host") < 0)).sum()) / n_live
        if imbalance(state.summary(), self.objective, share) <= self.threshold:
            return None
        planned = plan(controller, max_moves=self.max_moves, objective=self.objective)
        return apply(controller, planned) if planned.steps else None


@transaction
def evict_underused(controller, *, threshold: float = 0.5, max_moves: int = 10) -> list:
    """The descheduler-like baseline: evict every workload of the least used Ready hosts whose
    utilisation (the larger of CPU and memory in use over capacity) is under ``threshold``,
    whole hosts, up to ``max_moves`` evictions; the next reconcile re-places them. Returns the
    keys ``(kind, namespace, name)`` evicted."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    max_moves = rb._check_int(max_moves, "max_moves", 0)
    st = controller._store
    rows, hosts = st.rows, st.hosts
    H = hosts.n
    cap_c, cap_m = hosts.node_cpu[:H].sum(axis=1), hosts.node_mem[:H].sum(axis=1)
    used_c = cap_c - hosts.free_cpu[:H].sum(axis=1)
    used_m = cap_m - hosts.free_mem[:H].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.maximum(np.where(cap_c > 0, used_c / cap_c, 0.0),
                          np.where(cap_m > 0, used_m / cap_m, 0.0))
    bound = rows.view("host")
    live = rows.view("live")
    victims = []
    for h in np.argsort(util, kind="stable").tolist():
        if hosts.state[h] != READY or util[h] >= threshold or (used_c[h] == 0 and used_m[h] == 0):
            continue
        on = np.flatnonzero(live & (bound == h))
        if on.size == 0 or len(victims) + on.size > max_moves:
            continue
        victims.extend(on.tolist())
    if not victims:
        return []
    idx = np.array(sorted(victims), dtype=np.int64)
    keys = []
    for r in idx.tolist():
        kind, namespace, name = st.key_of_row(r)
        keys.append((kind, namespace, name))
        st.event("Normal", "Evicted", kind, namespace, name,
                 f"descheduler: {hosts.names[int(rows.host[r])]} is under-used")
    st.unbind(idx)
    rows.reason[idx] = REASON_NEW
    rows.rv[idx] = st.bump()
    return keys


__all__ = ["plan", "apply", "Periodic", "ControllerPlan", "Step", "imbalance", "max_unavailable",
           "evict_underused"]
