"""The ``Policy`` object: one named bundle of the four placement choices and the score weights.

A policy compiles to the integer codes and weights the kernels take (``Policy.compile``). Fields
left as ``None`` are open: the arguments of the ``place()`` call fill them, so
``place(c, r, policy="esxi", order="given")`` is ESXi's NUMA behaviour placed online, while a
field the policy sets always wins over the call's argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import codes
from ..codes import HOST_POLICIES, NODE_CHOICES, NUMA_MODES, ORDERS

MAX_WEIGHT = 1000


class Compiled(NamedTuple):
    """What crosses into a kernel: codes and integer weights only."""

    score: int
    numa: int
    node: int
    order: int
    cpu_weight: int
    mem_weight: int


@dataclass(frozen=True)
class Policy:
    """A named placement policy.

    name        registry key
    score       host score: first-fit, best-fit, worst-fit, balanced, dot-product
    numa        default NUMA mode for requests that set none (None = the call's ``numa``)
    node        node choice among equally wide, equally near sets: pack or spread (None = call's)
    order       decreasing (batch packing) or given (online) (None = the call's ``order``)
    cpu_weight, mem_weight
                integer weights (0..1000, not both 0) of the CPU and memory terms of the host
                score, like the resource weights of kube-scheduler's NodeResourcesFit scoring;
                ``balanced`` compares utilisations and ignores them.
    description one line for listings
    """

    name: str
    score: str = "best-fit"
    numa: str | None = None
    node: str | None = None
    order: str | None = None
    cpu_weight: int = 1
    mem_weight: int = 1
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"policy name must be a non-empty string, got {self.name!r}")
        for field, table, what in (("score", HOST_POLICIES, "score"), ("numa", NUMA_MODES, "numa mode"),
                                   ("node", NODE_CHOICES, "node choice"), ("order", ORDERS, "order")):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{field} must be a name, one of: "
                                 f"{', '.join(map(repr, table))}; got {value!r}")
        codes.resolve(HOST_POLICIES, self.score, "score")
        if self.numa is not None:
            codes.resolve(NUMA_MODES, self.numa, "numa mode")
        if self.node is not None:
            codes.resolve(NODE_CHOICES, self.node, "node choice")
        if self.order is not None:
            codes.resolve(ORDERS, self.order, "order")
        for field in ("cpu_weight", "mem_weight"):
            value = getattr(self, field)
            if (not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_))
                    or not 0 <= value <= MAX_WEIGHT):
                raise ValueError(f"{field} must be an integer in 0..{MAX_WEIGHT}, got {value!r}")
            object.__setattr__(self, field, int(value))
        if self.cpu_weight == 0 and self.mem_weight == 0:
            raise ValueError("cpu_weight and mem_weight cannot both be 0")

    def compile(self, *, numa: str, node: str, order: str) -> Compiled:
        """Codes for the kernels; the call's ``numa``/``node``/``order`` fill the open fields."""
        return Compiled(
            score=codes.resolve(HOST_POLICIES, self.score, "score"),
            numa=codes.resolve(NUMA_MODES, self.numa if self.numa is not None else numa, "numa mode"),
            node=codes.resolve(NODE_CHOICES, self.node if self.node is not None else node, "node choice"),
            order=codes.resolve(ORDERS, self.order if self.order is not None else order, "order"),
            cpu_weight=self.cpu_weight,
            mem_weight=self.mem_weight,
        )
