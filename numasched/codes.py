"""Integer codes shared by every backend.

Only arrays, scalars and these codes cross into a kernel. Each table maps the public name to
its code; ``resolve()`` turns a user's name into a code and refuses unknown names with the list of
known ones. The numbers are part of the embedding contract: never renumber, only append.
"""
from __future__ import annotations

# NUMA modes: the kubelet Topology Manager's policies (ESXi's home node is `restricted` with
# equal NUMA clients). Per-request overrides use MODE_DEFAULT to mean "the call's mode".
MODE_DEFAULT = -1
MODE_NONE = 0
MODE_SINGLE = 1
MODE_RESTRICTED = 2
MODE_BEST_EFFORT = 3
NUMA_MODES = {
    "none": MODE_NONE,
    "single-numa-node": MODE_SINGLE,
    "restricted": MODE_RESTRICTED,
    "best-effort": MODE_BEST_EFFORT,
}

# Host scores. The exact formulas are in numasched.policies.
POLICY_FIRST_FIT = 0
POLICY_BEST_FIT = 1
POLICY_WORST_FIT = 2
POLICY_BALANCED = 3
POLICY_DOT_PRODUCT = 4
HOST_POLICIES = {
    "first-fit": POLICY_FIRST_FIT,
    "best-fit": POLICY_BEST_FIT,
    "worst-fit": POLICY_WORST_FIT,
    "balanced": POLICY_BALANCED,
    "dot-product": POLICY_DOT_PRODUCT,
}

# Node choice among node sets of equal width and equal distance.
NODE_PACK = 0
NODE_SPREAD = 1
NODE_CHOICES = {"pack": NODE_PACK, "spread": NODE_SPREAD}

# Request order. `fill` is bin-centric: hosts filled one at a time (numasched.kernels.fill).
ORDER_DECREASING = 0
ORDER_GIVEN = 1
ORDER_FILL = 2
ORDERS = {"decreasing": ORDER_DECREASING, "given": ORDER_GIVEN, "fill": ORDER_FILL}

# Pending reasons, checked in this order; the first that applies wins. 0 = placed.
PLACED = 0
REASON_TOO_LARGE = 1
REASON_CONSTRAINT = 2
REASON_NO_CPU = 3
REASON_NO_MEMORY = 4
REASON_NO_NUMA_FIT = 5
REASONS = {
    PLACED: "placed",
    REASON_TOO_LARGE: "too-large",
    REASON_CONSTRAINT: "host-constraint",
    REASON_NO_CPU: "insufficient-cpu",
    REASON_NO_MEMORY: "insufficient-memory",
    REASON_NO_NUMA_FIT: "no-numa-fit",
}
REASON_MESSAGES = {
    PLACED: "placed",
    REASON_TOO_LARGE: "larger than any host could ever hold under its NUMA mode",
    REASON_CONSTRAINT: "its required host is unschedulable or could never hold it",
    REASON_NO_CPU: "no eligible host has enough free CPU",
    REASON_NO_MEMORY: "no eligible host has enough free memory",
    REASON_NO_NUMA_FIT: "no eligible host has room in both resources on a node set its NUMA mode allows",
}

# Fixed point used by every score: a fraction x / cap is (x << FIXED_SHIFT) // cap.
FIXED_SHIFT = 16
FIXED_ONE = 1 << FIXED_SHIFT
# Embedding ranks (numasched.embedding): under best-effort a narrower node set outranks any
# score, so rank = score - width * WIDTH_RANK; every score is >= 0 and below 2**44.
WIDTH_RANK = 1 << 44

# Validation limits that keep every fixed-point product inside int64.
MAX_NODES = 64               # node sets are uint64 bit masks
MAX_NODE_AMOUNT = 1 << 44    # per node and resource: 16 Ti bytes / 17 billion millicores
MAX_HOST_AMOUNT = 1 << 46    # per host and resource (sum over its nodes)
MAX_REQUEST_AMOUNT = 1 << 62 # larger requests are refused; anything above a host is pending


def resolve(table: dict, value, field: str) -> int:
    """Return the code for ``value`` (a name, or already a valid code) or raise ValueError."""
    if isinstance(value, str):
        if value in table:
            return table[value]
    elif isinstance(value, (int,)) and not isinstance(value, bool) and value in table.values():
        return int(value)
    known = ", ".join(repr(k) for k in table)
    raise ValueError(f"unknown {field} {value!r}; known: {known}")


def name_of(table: dict, code: int) -> str:
    """Inverse of ``resolve`` for reports."""
    for name, c in table.items():
        if c == code:
            return name
    raise KeyError(code)
