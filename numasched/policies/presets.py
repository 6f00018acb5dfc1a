"""Named presets: the host scores alone, and the behaviours the project compares.

The host-score names (``first-fit`` ... ``dot-product``) are policies that set only the score, so
``place(policy="worst-fit", numa=...)`` keeps working as plain keyword choices. The presets fix
the choices that define them and leave the rest to the call:

- ``esxi``: every VM on a home node; a VM wider than a node split into equal NUMA clients over
  the fewest and nearest nodes (``restricted``), nodes balanced (``spread``), as ESXi's NUMA
  scheduler does at initial placement. Host choice stays the default best-fit so that ``esxi``
  and ``linux`` differ in NUMA behaviour only.
- ``kubelet-single-numa-node`` / ``kubelet-restricted`` / ``kubelet-best-effort``: the kubelet
  Topology Manager policies; within a width the kubelet prefers the lowest-numbered nodes
  (``pack``).
- ``linux``: NUMA-oblivious; the load balancer spreads threads and memory over all nodes of the
  host (``none``).
- ``binpack``: fewest hosts (best-fit, decreasing order, nodes packed).
- ``spread``: load spread over hosts and nodes (worst-fit, nodes spread).
- ``vector-pack``: fewest hosts for requests whose CPU and memory differ in shape: hosts filled
  one at a time, each with the remaining request best aligned with its room (``order="fill"``,
  the bin-centric dot product of Panigrahy et al.), placed first-fit so that the placement is
  that filling (exactly so on one-node hosts and under ``none``), nodes packed.
"""
from __future__ import annotations

from ..codes import HOST_POLICIES
from .base import Policy
from .registry import Registry

REGISTRY = Registry()

for _score in HOST_POLICIES:
    REGISTRY.register(Policy(_score, score=_score, description=f"host score {_score} alone"))

REGISTRY.register(Policy("esxi", numa="restricted", node="spread",
                         description="ESXi home node: fewest, nearest nodes, equal NUMA clients, nodes balanced"))
REGISTRY.register(Policy("kubelet-single-numa-node", numa="single-numa-node", node="pack",
                         description="kubelet Topology Manager single-numa-node"))
REGISTRY.register(Policy("kubelet-restricted", numa="restricted", node="pack",
                         description="kubelet Topology Manager restricted"))
REGISTRY.register(Policy("kubelet-best-effort", numa="best-effort", node="pack",
                         description="kubelet Topology Manager best-effort"))
REGISTRY.register(Policy("linux", numa="none", node="pack",
                         description="Linux load balancer: NUMA-oblivious, spread over the host's nodes"))
REGISTRY.register(Policy("binpack", score="best-fit", node="pack", order="decreasing",
                         description="fewest hosts: best-fit decreasing, nodes packed"))
REGISTRY.register(Policy("spread", score="worst-fit", node="spread",
                         description="spread load over hosts and nodes"))
REGISTRY.register(Policy("vector-pack", score="first-fit", node="pack", order="fill",
                         description="fewest hosts for two-resource requests: hosts filled one at "
                                     "a time with the best-aligned request, first-fit"))


def register(policy: Policy) -> Policy:
    """Add a policy to the global registry (names are unique)."""
    return REGISTRY.register(policy)


def get(name) -> Policy:
    """A registered policy by name (a Policy passes through)."""
    return REGISTRY.get(name)


def names() -> list[str]:
    return REGISTRY.names()
