"""Placement policies: request order, host score, NUMA mode, node choice and score weights.

A ``Policy`` (``base.py``) bundles the four choices; ``REGISTRY`` (``registry.py``) maps names to
policies and refuses duplicates; ``presets.py`` registers the host scores and the named
behaviours (esxi, kubelet-*, linux, binpack, spread). Everything compiles to the integer codes
of ``numasched.codes`` and two integer weights, which is all a kernel sees.

Host scores are integer fixed point (a fraction x / cap is ``fx(x, cap) = (x << 16) // cap``),
so every backend computes the same value; higher is better and ties go to the lowest host
index. With C/M the host's total CPU/memory capacity, c/m its free totals before placing,
(rc, rm) the request, and (wc, wm) the policy's CPU and memory weights (1 and 1 by default):

- ``first-fit``   0 for every host that fits: the lowest feasible index wins.
- ``best-fit``    (wc + wm)·ONE − wc·fx(c − rc, C) − wm·fx(m − rm, M): least weighted
                  normalised room left after placing (kube-scheduler's MostAllocated).
- ``worst-fit``   wc·fx(c − rc, C) + wm·fx(m − rm, M): most room left (LeastAllocated; spreads).
- ``balanced``    ONE − |fx(C − c + rc, C) − fx(M − m + rm, M)|: CPU and memory utilisation
                  closest after placing (the BalancedAllocation idea); weights do not apply.
- ``dot-product`` wc·fx(rc, C)·fx(c, C) + wm·fx(rm, M)·fx(m, M): alignment of the request with
                  the free vector (Tetris, Grandl et al. 2014; Panigrahy et al. 2011).

ONE = 1 << 16. Under ``best-effort`` a narrower node set wins across hosts before the score.
Node sets of equal width are ranked by lowest distance sum, then ``pack`` (highest node
utilisation after placing) or ``spread`` (lowest), then lowest node ids.
"""
from ..codes import HOST_POLICIES, NODE_CHOICES, NUMA_MODES, ORDERS
from .base import MAX_WEIGHT, Compiled, Policy
from .presets import REGISTRY, get, names, register
from .registry import Registry

__all__ = ["Policy", "Compiled", "Registry", "REGISTRY", "get", "names", "register",
           "MAX_WEIGHT", "HOST_POLICIES", "NODE_CHOICES", "NUMA_MODES", "ORDERS"]
