"""Placement policies: request order, host score, NUMA mode and node choice.

Each choice compiles to an integer code of ``numasched.codes`` that the kernels take. The host
scores are integer fixed point (a fraction x / cap is ``(x << 16) // cap``, written ``fx``), so
every backend computes the same value; higher is better and ties go to the lowest host index.
With C/M the host's total CPU/memory capacity, c/m its free totals before placing and (rc, rm)
the request:

- ``first-fit``   0 for every host that fits: the lowest feasible index wins.
- ``best-fit``    2·ONE − fx(c − rc, C) − fx(m − rm, M): least normalised room left after placing.
- ``worst-fit``   fx(c − rc, C) + fx(m − rm, M): most room left (spreads load).
- ``balanced``    ONE − |fx(C − c + rc, C) − fx(M − m + rm, M)|: CPU and memory utilisation
                  closest after placing (the Kubernetes BalancedAllocation idea).
- ``dot-product`` fx(rc, C)·fx(c, C) + fx(rm, M)·fx(m, M): alignment of the request with the
                  free vector (Tetris, Grandl et al.; Panigrahy et al.'s vector packing).

ONE = 1 << 16. Under ``best-effort`` a narrower node set wins across hosts before the score.
"""
from ..codes import HOST_POLICIES, NODE_CHOICES, NUMA_MODES, ORDERS

__all__ = ["HOST_POLICIES", "NODE_CHOICES", "NUMA_MODES", "ORDERS"]
