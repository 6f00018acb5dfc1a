"""Quota as admission, as in Kubernetes: checked when an object is applied, never at placement.

A namespace is limited by the operator's quota (``ops.set_quota``) and by every ResourceQuota
object in it; per resource the smallest limit wins. Three resources are limited:
``requests.cpu`` (millicores), ``requests.memory`` (bytes) and ``count`` (workloads: Pods,
Deployment replicas and VMs). Usage is the sum over the namespace's workloads, Running or
Pending alike, kept as running totals so an admission check is O(1).

Lowering a quota below the current usage evicts nothing (as in Kubernetes); it only refuses new
work until usage falls below it.
"""
from __future__ import annotations

from ..io.quantity import format_cpu, format_memory

RESOURCES = ("cpu", "memory", "count")
LABELS = {"cpu": "requests.cpu", "memory": "requests.memory", "count": "count"}


class QuotaExceeded(ValueError):
    """An object would take its namespace above a quota; it was not stored.

    ``resource`` / ``requested`` / ``used`` / ``limit`` describe the first resource exceeded
    (``resources`` lists all of them), in millicores, bytes or a count.
    """

    def __init__(self, message: str, *, namespace: str, exceeded: list[tuple[str, int, int, int]]):
        super().__init__(message)
        self.namespace = namespace
        self.resources = [e[0] for e in exceeded]
        self.resource, self.requested, self.used, self.limit = exceeded[0]


def format_amount(resource: str, value: int) -> str:
    if resource == "cpu":
        return format_cpu(value)
    if resource == "memory":
        return format_memory(value)
    return str(value)


def limits(store, namespace: str) -> dict[str, tuple[int, str]]:
    """resource -> (limit, where it comes from) for every limited resource of a namespace."""
    out: dict[str, tuple[int, str]] = {}
    record = store.namespaces[namespace]
    sources = [(record.ops_quota, "operator quota")]
    sources += [(q.limits, f"ResourceQuota '{q.name}'") for (ns, _), q in sorted(store.quotas.items())
                if ns == namespace]
    for values, source in sources:
        for resource, limit in values.items():
            if limit is not None and (resource not in out or limit < out[resource][0]):
                out[resource] = (limit, source)
    return out


def usage(store, namespace: str) -> list[int]:
    return store.usage.setdefault(namespace, [0, 0, 0])


def exceeded_message(subject: str, namespace: str, exceeded, sources) -> str:
    def part(index: int) -> str:
        return ",".join(f"{LABELS[e[0]]}={format_amount(e[0], e[index])}" for e in exceeded)

    where = ", ".join(dict.fromkeys(sources))
    return (f"{subject}: exceeded quota of namespace '{namespace}' ({where}), "
            f"requested: {part(1)}, used: {part(2)}, limited: {part(3)}")


def check(store, namespace: str, subject: str, cpu: int, mem: int, count: int,
          freed: tuple[int, int, int] = (0, 0, 0)) -> None:
    """Raise QuotaExceeded if adding (cpu, mem, count) would exceed a limit; ``freed`` is what
    the same apply gives back (the object it replaces)."""
    limited = limits(store, namespace)
    if not limited:
        return
    used = usage(store, namespace)
    exceeded, sources = [], []
    for i, (resource, amount) in enumerate(zip(RESOURCES, (cpu, mem, count))):
        if resource in limited and amount:
            limit, source = limited[resource]
            now = used[i] - freed[i]
            if now + amount > limit:
                exceeded.append((resource, amount, now, limit))
                sources.append(source)
    if exceeded:
        raise QuotaExceeded(exceeded_message(subject, namespace, exceeded, sources),
                            namespace=namespace, exceeded=exceeded)


def allowed(store, namespace: str, cpu: int, mem: int, wanted: int,
            freed: tuple[int, int, int] = (0, 0, 0)) -> tuple[int, str | None]:
    """How many of ``wanted`` replicas of (cpu, mem) fit the quota, and if fewer, why."""
    limited = limits(store, namespace)
    used = usage(store, namespace)
    n = wanted
    for i, (resource, amount) in enumerate(zip(RESOURCES, (cpu, mem, 1))):
        if resource in limited and amount:
            room = max(0, limited[resource][0] - (used[i] - freed[i]))
            n = min(n, room // amount)
    if n >= wanted:
        return wanted, None
    blocked = []
    sources = []
    for i, (resource, amount) in enumerate(zip(RESOURCES, (cpu, mem, 1))):
        if resource in limited and amount:
            limit, source = limited[resource]
            now = used[i] - freed[i] + n * amount
            if now + amount > limit:
                blocked.append((resource, amount, now, limit))
                sources.append(source)
    reason = exceeded_message(f"created {n} of {wanted} replicas", namespace, blocked, sources)
    return n, reason


def require_requests(store, namespace: str, cpu: int, mem: int, containers_path: str) -> None:
    """A workload that requests nothing of a resource its namespace's quota limits is refused
    (Kubernetes: "must specify requests.cpu")."""
    limited = limits(store, namespace)
    for resource, amount in (("cpu", cpu), ("memory", mem)):
        if resource in limited and amount == 0:
            raise ValueError(f"{containers_path}[*].resources.requests.{resource}: required, "
                             f"because namespace '{namespace}' has a quota on "
                             f"{LABELS[resource]} ({limited[resource][1]})")


def add_usage(store, namespace: str, cpu: int, mem: int, count: int) -> None:
    used = usage(store, namespace)
    used[0] += cpu
    used[1] += mem
    used[2] += count
