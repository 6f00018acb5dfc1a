"""Where data enters and leaves numasched: topology sources (Kubernetes NodeResourceTopology and
Node objects, this machine's sysfs, inventory files), trace replay, and plots.

Every file is read through ``files`` (regular files only, size-limited, one safe YAML loader)
within the bounds of ``limits``; quantities through ``quantity``. ``topology``, ``trace`` and
``workloads`` need only the core dependencies; ``plots`` needs matplotlib (the ``plot`` extra)
and is imported on use.
"""
from .topology import Topology, read_sysfs, read_topology, to_nrt

__all__ = ["Topology", "read_topology", "read_sysfs", "to_nrt"]
