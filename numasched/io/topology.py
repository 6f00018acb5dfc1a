"""Topology sources: Kubernetes objects, this machine's sysfs, inventory files -> ``Cluster``.

Every reader returns a ``Topology``: the ``numasched.Cluster`` plus what the arrays cannot hold
and a CLI or a scheduler extender needs: host names, per-host attributes (such as the kubelet's
``topologyManagerPolicy``), and notes on every default that was assumed.

Sources
-------
- ``NodeResourceTopology`` (``topology.node.k8s.io/v1alpha2``, as node-feature-discovery or the
  resource-topology-exporter write it): one host per object, one NUMA node per zone of
  ``type: Node`` named ``node-<id>`` (the id is the node index; ids a host lacks are absent,
  zero-capacity nodes). Of each zone's ``resources``, ``cpu`` and ``memory`` are read:
  ``allocatable`` (else ``capacity``) is the node's capacity, ``available`` (else the capacity)
  its free amount. ``costs`` (``{name: node-j, value: d}``) is the SLIT row of the zone.
  ``attributes`` (``{name, value}``) and the older ``topologyPolicies`` list are kept per host.
- Kubernetes ``Node``: matched by name, it supplies a resource the NRT object lacks (the
  node-feature-discovery exporter publishes no ``cpu``): ``status.allocatable`` (else
  ``status.capacity``) divided evenly over the host's zones, the remainder to the lowest ids,
  all of it free. ``spec.unschedulable: true`` makes the host unschedulable. A Node without a
  NodeResourceTopology is a host of one NUMA node.
- An inventory, YAML (``hosts:`` list) or CSV (one row per NUMA node); see ``read_inventory_*``.
- This Linux machine: ``/sys/devices/system/node`` (``cpulist``, ``meminfo``, ``distance``).

Missing distances are 10 local / 20 remote (Linux's own default when firmware gives no SLIT);
every reader says so in ``Topology.notes``. Given distances are checked as Linux checks an ACPI
SLIT: the distance of a node to itself is 10, every other is 11..254 (so the local one is the
smallest of its row); 255, ACPI's "unreachable", is refused, because numasched could then span a
request over nodes that cannot reach each other's memory.

Files are read by ``numasched.io.files`` (regular files only, size-limited, a byte-order mark
dropped; YAML by one safe loader that refuses duplicate keys and excessive depth). Capacities
are bounded by ``codes.MAX_NODE_AMOUNT`` per node; inventory ``count`` and the number of hosts by
``numasched.io.limits``. Every error is a ``ValueError`` naming the file, the field and the
value; nothing is returned until the whole input has been read and checked.
"""
from __future__ import annotations

import csv
import io
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..api import Cluster
from ..codes import MAX_NODE_AMOUNT, MAX_NODES
from . import limits
from .files import check_items, flatten_list, load_yaml, read_text
from .quantity import cpu_millicores, format_cpu, memory_bytes

LOCAL_DISTANCE = 10
REMOTE_DISTANCE = 20
MAX_DISTANCE = 254          # ACPI SLIT: 10 local, 11..254 remote, 255 unreachable
UNREACHABLE_DISTANCE = 255
SYSFS_NODE_ROOT = "/sys/devices/system/node"
NRT_API_VERSION = "topology.node.k8s.io/v1alpha2"
TOPOLOGY_SUFFIXES = (".yaml", ".yml", ".json", ".csv")

_ZONE_NAME = re.compile(r"^node-(\d+)$")
_SYSFS_NODE = re.compile(r"^node(\d+)$")


@dataclass
class HostSpec:
    """One host as read, before hosts are padded to a common node count.

    ``cpu``/``mem``/``free_cpu``/``free_mem`` map a NUMA node id to millicores / bytes;
    ``distance`` maps ``(i, j)`` to a SLIT value (pairs not given take the defaults).
    """

    name: str
    source: str
    cpu: dict[int, int] = field(default_factory=dict)
    mem: dict[int, int] = field(default_factory=dict)
    free_cpu: dict[int, int] = field(default_factory=dict)
    free_mem: dict[int, int] = field(default_factory=dict)
    distance: dict[tuple[int, int], int] = field(default_factory=dict)
    schedulable: bool = True
    attributes: dict[str, str] = field(default_factory=dict)
    details: dict[int, dict] = field(default_factory=dict)   # per node, for display only

    @property
    def node_ids(self) -> list[int]:
        return sorted(set(self.cpu) | set(self.mem))


@dataclass(frozen=True)
class Topology:
    """A ``Cluster`` with the names and attributes of its hosts.

    ``names[h]`` is host h's name, ``attributes[h]`` its attributes (strings), ``sources[h]``
    the file it came from, ``details[h]`` per-node facts for display (sysfs cpulists),
    ``notes`` what was assumed while reading.
    """

    cluster: Cluster
    names: tuple[str, ...]
    attributes: tuple[dict, ...]
    sources: tuple[str, ...]
    details: tuple[dict, ...] = ()
    notes: tuple[str, ...] = ()

    def index(self, name: str) -> int:
        """Host index of ``name`` (``KeyError`` if the topology has no such host)."""
        return self._index[name]

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {n: h for h, n in enumerate(self.names)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def topology_manager_policy(self) -> str | None:
        """The ``topologyManagerPolicy`` attribute if every host has the same one, else None."""
        values = {a.get("topologyManagerPolicy") for a in self.attributes}
        return values.pop() if len(values) == 1 else None

    def topology_manager_scope(self) -> str | None:
        """The ``topologyManagerScope`` attribute if every host has the same one, else None."""
        values = {a.get("topologyManagerScope") for a in self.attributes}
        return values.pop() if len(values) == 1 else None

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"Topology({len(self.names)} hosts, {self.cluster!r}, notes={len(self.notes)})"


# --------------------------------------------------------------------------------------------
# Assembling hosts into a Cluster
# --------------------------------------------------------------------------------------------
def build(hosts: list[HostSpec], notes=()) -> Topology:
    """Pad hosts to a common node count K (absent nodes are zero) and build the Cluster."""
    if not hosts:
        raise ValueError("the topology has no hosts")
    most = limits.current().max_hosts
    if len(hosts) > most:
        raise ValueError(f"{hosts[0].source}: {len(hosts):,} hosts, more than {most:,} "
                         "(limits.max_hosts)")
    seen: dict[str, str] = {}
    for host in hosts:
        check_slit(host)
        if host.name in seen:
            raise ValueError(f"{host.source}: host {host.name!r} is defined twice "
                             f"(also in {seen[host.name]})")
        seen[host.name] = host.source
        ids = host.node_ids
        if not ids:
            raise ValueError(f"{host.source}: host {host.name!r} has no NUMA node with CPU or memory")
        if ids[-1] >= MAX_NODES:
            raise ValueError(f"{host.source}: host {host.name!r} has NUMA node id {ids[-1]}; "
                             f"numasched supports ids 0..{MAX_NODES - 1}")
    k = max(h.node_ids[-1] for h in hosts) + 1
    n = len(hosts)
    cpu = np.zeros((n, k), dtype=np.int64)
    mem = np.zeros((n, k), dtype=np.int64)
    free_cpu = np.zeros((n, k), dtype=np.int64)
    free_mem = np.zeros((n, k), dtype=np.int64)
    distance = np.full((n, k, k), REMOTE_DISTANCE, dtype=np.int64)
    distance[:, np.arange(k), np.arange(k)] = LOCAL_DISTANCE
    for h, host in enumerate(hosts):
        for node, value in host.cpu.items():
            cpu[h, node] = value
            free_cpu[h, node] = host.free_cpu.get(node, value)
        for node, value in host.mem.items():
            mem[h, node] = value
            free_mem[h, node] = host.free_mem.get(node, value)
        for (i, j), value in host.distance.items():
            if i < k and j < k:
                distance[h, i, j] = value
    try:
        cluster = Cluster(cpu, mem, distance, schedulable=[h.schedulable for h in hosts],
                          free_cpu=free_cpu, free_mem=free_mem)
    except ValueError as exc:   # name the host rather than an array index
        raise ValueError(f"{_host_of_message(str(exc), hosts)}{exc}") from None
    return Topology(cluster=cluster, names=tuple(h.name for h in hosts),
                    attributes=tuple(dict(h.attributes) for h in hosts),
                    sources=tuple(h.source for h in hosts),
                    details=tuple(dict(h.details) for h in hosts),
                    notes=tuple(dict.fromkeys(notes)))


def _host_of_message(message: str, hosts: list[HostSpec]) -> str:
    match = re.search(r"\[(\d+)[,\]]| host (\d+)", message)
    if not match:
        return ""
    h = int(match.group(1) or match.group(2))
    return f"{hosts[h].source}: host {hosts[h].name!r}: " if h < len(hosts) else ""


# --------------------------------------------------------------------------------------------
# Files and directories
# --------------------------------------------------------------------------------------------
def safe_yaml_documents(text: str, source: str) -> list:
    """All non-empty documents of a YAML (or JSON) text: ``numasched.io.files.load_yaml``."""
    return load_yaml(text, source)


def topology_files(path) -> list[Path]:
    """``path`` itself, or the topology files (``*.yaml``, ``*.yml``, ``*.json``, ``*.csv``)
    directly inside a directory, sorted by name."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TOPOLOGY_SUFFIXES)
        if not files:
            raise ValueError(f"{p}: no topology files ({', '.join('*' + s for s in TOPOLOGY_SUFFIXES)})")
        return files
    if not p.exists():
        raise ValueError(f"{p}: no such file or directory")
    return [p]


def read_topology(path) -> Topology:
    """Read a topology file or a directory of them.

    YAML/JSON files may hold NodeResourceTopology and Node objects (also inside ``kind: List``
    or ``...List`` objects) or an inventory (a mapping with ``hosts:``); ``.csv`` files are CSV
    inventories. All files of a directory form one cluster, hosts in the order they are first
    named.
    """
    nrts: list[tuple[str, dict]] = []
    nodes: list[tuple[str, dict]] = []
    inventory_hosts: list[HostSpec] = []
    notes: list[str] = []
    order: list[str] = []
    for file in topology_files(path):
        text = read_text(file, "a topology file")
        if file.suffix.lower() == ".csv":
            hosts, more = parse_inventory_csv(text, str(file))
            inventory_hosts += hosts
            notes += more
            order += [h.name for h in hosts]
            continue
        docs = load_yaml(text, str(file))
        for i, doc in enumerate(_flatten_lists(docs, str(file))):
            where = f"{file}" if len(docs) == 1 else f"{file} (document {i + 1})"
            if not isinstance(doc, dict):
                raise ValueError(f"{where}: expected a mapping, got {type(doc).__name__}")
            kind = doc.get("kind")
            if kind == "NodeResourceTopology":
                nrts.append((where, doc))
                order.append(_object_name(doc, where))
            elif kind == "Node":
                nodes.append((where, doc))
                order.append(_object_name(doc, where))
            elif kind is None and "hosts" in doc:
                hosts, more = parse_inventory(doc, where)
                inventory_hosts += hosts
                notes += more
                order += [h.name for h in hosts]
            else:
                raise ValueError(f"{where}: kind {kind!r} is not a topology source; expected "
                                 "NodeResourceTopology, Node, or an inventory with 'hosts:'")
    k8s_hosts, more = hosts_from_kubernetes(nrts, nodes)
    notes += more
    by_name = {h.name: h for h in inventory_hosts}
    for h in k8s_hosts:
        if h.name in by_name:
            raise ValueError(f"{h.source}: host {h.name!r} is defined twice "
                             f"(also in {by_name[h.name].source})")
        by_name[h.name] = h
    hosts = [by_name.pop(name) for name in dict.fromkeys(order) if name in by_name]
    return build(hosts + list(by_name.values()), notes)


def _flatten_lists(docs: list, source: str) -> list:
    return [item for doc in docs for item in flatten_list(doc, source)]


def _object_name(doc: dict, where: str) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: metadata.name: a {doc.get('kind')} needs a name, got {name!r}")
    return name


def _quantity_text(value):
    """A number written in a file is the quantity as written (YAML ``cpu: 2`` is 2 cores, as
    in a Kubernetes manifest), so ints and floats go to the parser as text."""
    if isinstance(value, bool):
        return value   # refused by the parser, naming the field
    if isinstance(value, (int, float)):
        return repr(value)
    return value


def _cpu(value, where: str) -> int:
    """A node's CPU capacity or free amount: at most ``MAX_NODE_AMOUNT`` millicores."""
    return cpu_millicores(_quantity_text(value), where, maximum=MAX_NODE_AMOUNT)


def _mem(value, where: str) -> int:
    """A node's memory capacity or free amount: at most ``MAX_NODE_AMOUNT`` bytes."""
    return memory_bytes(_quantity_text(value), where, maximum=MAX_NODE_AMOUNT)


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__} {value!r:.60}")
    return value


def _sequence(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__} {value!r:.60}")
    return value


def _distance_value(value, where: str) -> int:
    if value == UNREACHABLE_DISTANCE and not isinstance(value, bool):
        raise ValueError(f"{where}: distance 255 means unreachable (ACPI SLIT); numasched cannot "
                         "place across nodes that cannot reach each other: give each such node "
                         "as its own host")
    if isinstance(value, bool) or not isinstance(value, int) \
            or not LOCAL_DISTANCE <= value <= MAX_DISTANCE:
        raise ValueError(f"{where}: a SLIT distance must be an integer in {LOCAL_DISTANCE}.."
                         f"{MAX_DISTANCE} (ACPI), got {value!r:.40}")
    return value


def check_slit(host: "HostSpec") -> None:
    """The host's given distances as Linux accepts an ACPI SLIT: 10 to itself, more than 10 to
    any other node (so the local distance is the smallest of its row)."""
    for (i, j), value in sorted(host.distance.items()):
        if i == j and value != LOCAL_DISTANCE:
            raise ValueError(f"{host.source}: host {host.name!r}: distance from node {i} to "
                             f"itself is {value}; the local distance must be {LOCAL_DISTANCE}")
        if i != j and value <= LOCAL_DISTANCE:
            raise ValueError(f"{host.source}: host {host.name!r}: distance from node {i} to node "
                             f"{j} is {value}; a remote distance must be above the local "
                             f"{LOCAL_DISTANCE}")


# --------------------------------------------------------------------------------------------
# Kubernetes: NodeResourceTopology and Node
# --------------------------------------------------------------------------------------------
def host_from_nrt(doc: dict, where: str) -> tuple[HostSpec, dict[str, bool], list[str]]:
    """One NodeResourceTopology object -> (host, {"cpu": seen, "memory": seen}, notes)."""
    name = _object_name(doc, where)
    api = doc.get("apiVersion")
    if api is not None and not str(api).startswith("topology.node.k8s.io/"):
        raise ValueError(f"{where}: apiVersion {api!r} is not topology.node.k8s.io")
    host = HostSpec(name=name, source=where)
    notes: list[str] = []
    for i, attr in enumerate(_sequence(doc.get("attributes"), f"{where}: attributes")):
        attr = _mapping(attr, f"{where}: attributes[{i}]")
        if "name" not in attr:
            raise ValueError(f"{where}: attributes[{i}]: missing 'name'")
        host.attributes[str(attr["name"])] = str(attr.get("value", ""))
    policies = _sequence(doc.get("topologyPolicies"), f"{where}: topologyPolicies")
    if policies:
        host.attributes.setdefault("topologyPolicies", ",".join(map(str, policies)))
    seen = {"cpu": False, "memory": False}
    costs_missing = False
    zones = _sequence(doc.get("zones"), f"{where}: zones")
    for z, zone in enumerate(zones):
        zf = f"zones[{z}]"
        zone = _mapping(zone, f"{where}: {zf}")
        if zone.get("type") != "Node":
            continue   # sockets, cores, caches: only NUMA nodes carry allocatable resources here
        match = _ZONE_NAME.match(str(zone.get("name", "")))
        if not match:
            raise ValueError(f"{where}: {zf}.name: a zone of type Node must be named node-<id>, "
                             f"got {zone.get('name')!r}")
        node = int(match.group(1))
        if node in host.cpu:
            raise ValueError(f"{where}: {zf}.name: zone {zone['name']!r} appears twice")
        host.cpu[node] = host.mem[node] = 0
        for r, res in enumerate(_sequence(zone.get("resources"), f"{where}: {zf}.resources")):
            rf = f"{where}: {zf}.resources[{r}]"
            res = _mapping(res, rf)
            rname = res.get("name")
            if rname not in ("cpu", "memory"):
                continue   # hugepages, devices: not placed by numasched
            parse = _cpu if rname == "cpu" else _mem
            amounts = {}
            for key in ("capacity", "allocatable", "available"):
                if res.get(key) is not None:
                    amounts[key] = parse(res[key], f"{rf}.{key}")
            if not amounts:
                raise ValueError(f"{rf}: resource {rname!r} has no capacity, allocatable or available")
            cap = amounts.get("allocatable", amounts.get("capacity", amounts.get("available")))
            free = amounts.get("available", cap)
            if free > cap:
                raise ValueError(f"{rf}.available: {res.get('available')!r} is more than the "
                                 f"allocatable {res.get('allocatable', res.get('capacity'))!r}")
            seen[rname] = True
            (host.cpu if rname == "cpu" else host.mem)[node] = cap
            (host.free_cpu if rname == "cpu" else host.free_mem)[node] = free
        costs = _sequence(zone.get("costs"), f"{where}: {zf}.costs")
        if not costs:
            costs_missing = True
        for c, cost in enumerate(costs):
            cf = f"{where}: {zf}.costs[{c}]"
            cost = _mapping(cost, cf)
            target = _ZONE_NAME.match(str(cost.get("name", "")))
            if not target:
                raise ValueError(f"{cf}.name: expected node-<id>, got {cost.get('name')!r}")
            host.distance[(node, int(target.group(1)))] = _distance_value(cost.get("value"), f"{cf}.value")
    if not host.cpu:
        raise ValueError(f"{where}: NodeResourceTopology {name!r} has no zone of type Node named node-<id>")
    if costs_missing and len(host.cpu) > 1:
        notes.append(f"{where}: {name}: zones without costs; distances assumed "
                     f"{LOCAL_DISTANCE} local / {REMOTE_DISTANCE} remote")
    return host, seen, notes


def _node_resources(doc: dict, where: str) -> dict[str, tuple[str, object]]:
    """{resource: (field path, quantity)} from status.allocatable, else status.capacity."""
    status = _mapping(doc.get("status"), f"{where}: status")
    out = {}
    for section in ("capacity", "allocatable"):   # allocatable overrides capacity
        values = _mapping(status.get(section), f"{where}: status.{section}")
        for rname in ("cpu", "memory"):
            if values.get(rname) is not None:
                out[rname] = (f"{where}: status.{section}.{rname}", values[rname])
    return out


def _split_evenly(total: int, ids: list[int]) -> dict[int, int]:
    share, extra = divmod(total, len(ids))
    return {node: share + (1 if i < extra else 0) for i, node in enumerate(ids)}


def hosts_from_kubernetes(nrts: list[tuple[str, dict]], nodes: list[tuple[str, dict]]
                          ) -> tuple[list[HostSpec], list[str]]:
    """Hosts from NodeResourceTopology objects completed by the Node objects of the same name;
    Nodes without an NRT object become one-node hosts."""
    node_docs: dict[str, tuple[str, dict]] = {}
    for where, doc in nodes:
        name = _object_name(doc, where)
        if name in node_docs:
            raise ValueError(f"{where}: Node {name!r} is defined twice (also in {node_docs[name][0]})")
        node_docs[name] = (where, doc)
    hosts: list[HostSpec] = []
    notes: list[str] = []
    for where, doc in nrts:
        host, seen, more = host_from_nrt(doc, where)
        notes += more
        node_where, node_doc = node_docs.pop(host.name, (None, None))
        ids = sorted(host.cpu)
        if node_doc is not None:
            spec = _mapping(node_doc.get("spec"), f"{node_where}: spec")
            host.schedulable = not bool(spec.get("unschedulable", False))
            given = _node_resources(node_doc, node_where)
        else:
            given = {}
        for rname, target, free in (("cpu", host.cpu, host.free_cpu),
                                    ("memory", host.mem, host.free_mem)):
            if seen[rname]:
                continue
            if rname not in given:
                hint = (f"its Node object has no status.allocatable.{rname} or status.capacity.{rname}"
                        if node_doc is not None else
                        f"give the Node object {host.name!r} (status.allocatable.{rname} or "
                        f"status.capacity.{rname}) to divide over its zones")
                raise ValueError(f"{where}: NodeResourceTopology {host.name!r}: no zone lists a "
                                 f"{rname!r} resource (zones[].resources[].name: {rname}); {hint}")
            field_path, value = given[rname]
            total = (_cpu if rname == "cpu" else _mem)(value, field_path)
            split = _split_evenly(total, ids)
            target.update(split)
            free.update(split)
            notes.append(f"{where}: {host.name}: {rname} from the Node object ({value}) divided "
                         f"evenly over {len(ids)} NUMA node(s), all of it assumed free")
        hosts.append(host)
    for name, (where, doc) in node_docs.items():
        given = _node_resources(doc, where)
        for rname in ("cpu", "memory"):
            if rname not in given:
                raise ValueError(f"{where}: Node {name!r}: status.allocatable.{rname} or "
                                 f"status.capacity.{rname} is required")
        host = HostSpec(name=name, source=where)
        host.cpu[0] = host.free_cpu[0] = _cpu(given["cpu"][1], given["cpu"][0])
        host.mem[0] = host.free_mem[0] = _mem(given["memory"][1], given["memory"][0])
        spec = _mapping(doc.get("spec"), f"{where}: spec")
        host.schedulable = not bool(spec.get("unschedulable", False))
        labels = _mapping(_mapping(doc.get("metadata"), f"{where}: metadata").get("labels"),
                          f"{where}: metadata.labels")
        host.attributes.update({k: str(v) for k, v in labels.items()
                                if k.startswith("topology.kubernetes.io/")})
        hosts.append(host)
        notes.append(f"{where}: Node {name} has no NodeResourceTopology; taken as one NUMA node")
    return hosts, notes


def to_nrt(topology: Topology) -> list[dict]:
    """The topology as NodeResourceTopology objects (the inverse of the NRT reader: capacity,
    allocatable and available per zone, costs from the distance matrix, the attributes)."""
    c = topology.cluster
    docs = []
    for h, name in enumerate(topology.names):
        present = [k for k in range(c.nodes) if c.present[h, k]]
        zones = []
        for k in present:
            resources = []
            for rname, cap, free, fmt in (("cpu", c.node_cpu, c.free_cpu, format_cpu),
                                          ("memory", c.node_mem, c.free_mem, str)):
                if cap[h, k]:
                    resources.append({"name": rname, "capacity": fmt(int(cap[h, k])),
                                      "allocatable": fmt(int(cap[h, k])),
                                      "available": fmt(int(free[h, k]))})
            dist = c.distance[h if c.distance.shape[0] > 1 else 0]
            zones.append({"name": f"node-{k}", "type": "Node",
                          "costs": [{"name": f"node-{j}", "value": int(dist[k, j])} for j in present],
                          "resources": resources})
        attrs = [{"name": key, "value": value} for key, value in topology.attributes[h].items()
                 if key != "topologyPolicies"]
        docs.append({"apiVersion": NRT_API_VERSION, "kind": "NodeResourceTopology",
                     "metadata": {"name": name}, "attributes": attrs, "zones": zones})
    return docs


# --------------------------------------------------------------------------------------------
# Inventories
# --------------------------------------------------------------------------------------------
_HOST_KEYS = {"name", "count", "nodes", "distance", "schedulable", "attributes"}
_NODE_KEYS = {"cpu", "memory", "free_cpu", "free_memory"}
def csv_rows(text: str, where: str, required: tuple, optional: tuple,
             what: str) -> csv.DictReader:
    """Rows of a CSV text with ``#`` comment lines dropped and a checked header: every
    ``required`` column present, nothing outside ``required + optional`` (``ValueError``
    naming ``where`` and the ``what`` of the file otherwise)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)), skipinitialspace=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{where}: the {what} header needs columns {', '.join(required)}; "
                         f"missing {', '.join(missing)} (header: {','.join(header) or 'empty'})")
    unknown = [c for c in header if c not in required + optional]
    if unknown:
        raise ValueError(f"{where}: unknown {what} column(s) {', '.join(unknown)}; known: "
                         f"{', '.join(required + optional)}")
    reader.fieldnames = header
    return reader


_CSV_REQUIRED = ("host", "node", "cpu", "memory")
_CSV_OPTIONAL = ("free_cpu", "free_memory", "distance")


def parse_inventory(doc: dict, where: str) -> tuple[list[HostSpec], list[str]]:
    """A YAML inventory::

        hosts:
        - name: rack1          # required; with count: N the hosts are rack1-0 .. rack1-(N-1)
          count: 4             # optional, default 1
          nodes:               # NUMA node i is the i-th entry; quantities as in Kubernetes
          - {cpu: 32, memory: 256Gi}
          - {cpu: 32, memory: 256Gi, free_cpu: 16, free_memory: 128Gi}
          distance: [[10, 21], [21, 10]]   # optional SLIT matrix, default 10 / 20
          schedulable: true    # optional
          attributes: {topologyManagerPolicy: restricted}   # optional strings
    """
    unknown = set(doc) - {"hosts"}
    if unknown:
        raise ValueError(f"{where}: unknown inventory key(s) {sorted(unknown)}; expected 'hosts'")
    hosts: list[HostSpec] = []
    defaulted = False
    entries = _sequence(doc["hosts"], f"{where}: hosts")
    check_items(len(entries), f"{where}: hosts")
    if not entries:
        raise ValueError(f"{where}: hosts: the inventory lists no hosts")
    for i, entry in enumerate(entries):
        hf = f"{where}: hosts[{i}]"
        entry = _mapping(entry, hf)
        unknown = set(entry) - _HOST_KEYS
        if unknown:
            raise ValueError(f"{hf}: unknown key(s) {sorted(unknown)}; known: {sorted(_HOST_KEYS)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{hf}.name: a host needs a name, got {name!r}")
        count = entry.get("count", 1)
        most = limits.current().max_inventory_count
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
            raise ValueError(f"{hf}.count: expected an integer in 1..{most} "
                             f"(limits.max_inventory_count), got {count!r:.40}")
        total = len(hosts) + count
        if total > limits.current().max_hosts:
            raise ValueError(f"{hf}.count: the inventory would hold {total:,} hosts, more than "
                             f"{limits.current().max_hosts:,} (limits.max_hosts)")
        template = HostSpec(name=name, source=where)
        nodes = _sequence(entry.get("nodes"), f"{hf}.nodes")
        if not nodes:
            raise ValueError(f"{hf}.nodes: a host needs at least one NUMA node")
        for k, node in enumerate(nodes):
            nf = f"{hf}.nodes[{k}]"
            node = _mapping(node, nf)
            unknown = set(node) - _NODE_KEYS
            if unknown:
                raise ValueError(f"{nf}: unknown key(s) {sorted(unknown)}; known: {sorted(_NODE_KEYS)}")
            _inventory_node(template, k, node.get("cpu"), node.get("memory"),
                            node.get("free_cpu"), node.get("free_memory"), nf)
        if entry.get("distance") is None:
            defaulted = defaulted or len(nodes) > 1
        else:
            rows = _sequence(entry["distance"], f"{hf}.distance")
            if len(rows) != len(nodes):
                raise ValueError(f"{hf}.distance: expected {len(nodes)} rows (one per node), got {len(rows)}")
            for a, row in enumerate(rows):
                row = _sequence(row, f"{hf}.distance[{a}]")
                if len(row) != len(nodes):
                    raise ValueError(f"{hf}.distance[{a}]: expected {len(nodes)} values, got {len(row)}")
                for b, value in enumerate(row):
                    template.distance[(a, b)] = _distance_value(value, f"{hf}.distance[{a}][{b}]")
        sched = entry.get("schedulable", True)
        if not isinstance(sched, bool):
            raise ValueError(f"{hf}.schedulable: expected true or false, got {sched!r}")
        template.schedulable = sched
        attrs = _mapping(entry.get("attributes"), f"{hf}.attributes")
        template.attributes = {str(k): str(v) for k, v in attrs.items()}
        if "count" not in entry:
            hosts.append(template)
            continue
        for j in range(count):
            hosts.append(HostSpec(name=f"{name}-{j}", source=where, cpu=dict(template.cpu),
                                  mem=dict(template.mem), free_cpu=dict(template.free_cpu),
                                  free_mem=dict(template.free_mem), distance=dict(template.distance),
                                  schedulable=template.schedulable,
                                  attributes=dict(template.attributes)))
    notes = [f"{where}: hosts without a distance matrix: {LOCAL_DISTANCE} local / "
             f"{REMOTE_DISTANCE} remote assumed"] if defaulted else []
    return hosts, notes


def _inventory_node(host: HostSpec, k: int, cpu, mem, free_cpu, free_mem, where: str) -> None:
    if cpu is None or mem is None:
        raise ValueError(f"{where}: cpu and memory are required")
    host.cpu[k] = _cpu(cpu, f"{where}.cpu")
    host.mem[k] = _mem(mem, f"{where}.memory")
    for key, value, cap, out, parse, given in (
            ("free_cpu", free_cpu, host.cpu[k], host.free_cpu, _cpu, ("cpu", cpu)),
            ("free_memory", free_mem, host.mem[k], host.free_mem, _mem, ("memory", mem))):
        if value is None or value == "":
            continue
        amount = parse(value, f"{where}.{key}")
        if amount > cap:
            raise ValueError(f"{where}.{key}: {value!r} is more than the node's {given[0]} {given[1]!r}")
        out[k] = amount


def parse_inventory_csv(text: str, where: str) -> tuple[list[HostSpec], list[str]]:
    """A CSV inventory, one row per NUMA node, with a header::

        host,node,cpu,memory,free_cpu,free_memory,distance
        a,0,32,256Gi,,,10 21
        a,1,32,256Gi,16,128Gi,21 10

    ``host``, ``node`` (the NUMA node id), ``cpu`` and ``memory`` are required; ``free_cpu`` and
    ``free_memory`` default to the capacity; ``distance`` is the node's SLIT row over the host's
    node ids in increasing order (spaces or semicolons), default 10 / 20. Lines starting with
    ``#`` are comments.
    """
    reader = csv_rows(text, where, _CSV_REQUIRED, _CSV_OPTIONAL, "CSV")
    hosts: dict[str, HostSpec] = {}
    rows_of: dict[str, dict[int, str]] = {}
    for line_no, row in enumerate(reader, start=2):
        rf = f"{where}: line {line_no}"
        if None in row:
            raise ValueError(f"{rf}: more fields than the header has columns")
        name = (row.get("host") or "").strip()
        if not name:
            raise ValueError(f"{rf}: host: empty")
        try:
            node = int((row.get("node") or "").strip())
        except ValueError:
            raise ValueError(f"{rf}: node: expected a NUMA node id (0, 1, ...), got {row.get('node')!r}") from None
        if not 0 <= node < MAX_NODES:
            raise ValueError(f"{rf}: node: id {node} outside 0..{MAX_NODES - 1}")
        host = hosts.setdefault(name, HostSpec(name=name, source=where))
        if node in host.cpu:
            raise ValueError(f"{rf}: host {name!r} node {node} is listed twice")
        _inventory_node(host, node, _blank(row.get("cpu")), _blank(row.get("memory")),
                        _blank(row.get("free_cpu")), _blank(row.get("free_memory")), rf)
        if _blank(row.get("distance")) is not None:
            rows_of.setdefault(name, {})[node] = (row["distance"], rf)
    if not hosts:
        raise ValueError(f"{where}: the CSV inventory has no rows")
    defaulted = False
    for name, host in hosts.items():
        given = rows_of.get(name, {})
        ids = host.node_ids
        if not given:
            defaulted = defaulted or len(ids) > 1
            continue
        for node in ids:
            if node not in given:
                raise ValueError(f"{where}: host {name!r} node {node}: distance is missing "
                                 "(give every node of a host its row, or none)")
            text, rf = given[node]
            values = [v for v in re.split(r"[;\s]+", text.strip()) if v]
            if len(values) != len(ids):
                raise ValueError(f"{rf}: distance: expected {len(ids)} values (one per node of "
                                 f"{name!r}), got {text!r}")
            for j, value in zip(ids, values):
                try:
                    number = int(value)
                except ValueError:
                    raise ValueError(f"{rf}: distance: {value!r} is not an integer") from None
                host.distance[(node, j)] = _distance_value(number, f"{rf}: distance")
    notes = [f"{where}: hosts without distances: {LOCAL_DISTANCE} local / {REMOTE_DISTANCE} "
             "remote assumed"] if defaulted else []
    return list(hosts.values()), notes


def _blank(value):
    if value is None:
        return None
    value = value.strip()
    return value or None


# --------------------------------------------------------------------------------------------
# This machine: /sys/devices/system/node
# --------------------------------------------------------------------------------------------
def parse_cpulist(text: str, where: str = "cpulist") -> list[int]:
    """``"0-3,8,10-11"`` -> ``[0, 1, 2, 3, 8, 10, 11]``; an empty list is a node without CPUs."""
    cpus: list[int] = []
    text = text.strip()
    if not text:
        return cpus
    most = limits.current().max_cpulist_cpus
    for part in text.split(","):
        match = re.fullmatch(r"([0-9]{1,12})(?:-([0-9]{1,12}))?", part.strip())
        if not match:
            raise ValueError(f"{where}: malformed CPU list {text!r:.60} (at {part!r:.40})")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"{where}: malformed CPU list {text!r:.60} (range {part!r} runs "
                             "backwards)")
        if len(cpus) + hi - lo + 1 > most:
            raise ValueError(f"{where}: CPU list {text!r:.60} names more than {most:,} CPUs "
                             "(limits.max_cpulist_cpus)")
        cpus.extend(range(lo, hi + 1))
    return cpus


def _meminfo(text: str, where: str) -> dict[str, int]:
    """``Node 0 MemTotal:  5073100 kB`` lines -> {"MemTotal": bytes, ...}."""
    out = {}
    for line in text.splitlines():
        match = re.match(r"^Node\s+[0-9]+\s+(\w+):\s+([0-9]+)(?:\s+kB)?\s*$", line)
        if match:
            unit = 1024 if line.rstrip().endswith("kB") else 1
            digits = match.group(2)
            value = int(digits) * unit if len(digits) <= 20 else MAX_NODE_AMOUNT + 1
            if value > MAX_NODE_AMOUNT:
                raise ValueError(f"{where}: {match.group(1)} {digits[:24]!r} is above the largest "
                                 f"amount numasched accepts per node ({MAX_NODE_AMOUNT:,} bytes)")
            out[match.group(1)] = value
    if "MemTotal" not in out:
        raise ValueError(f"{where}: no 'Node <id> MemTotal: <n> kB' line")
    return out


def read_sysfs(root=SYSFS_NODE_ROOT, hostname: str | None = None) -> Topology:
    """This machine's NUMA layout from sysfs: one host (``hostname``, default this machine's
    name), node ``N`` from ``nodeN/cpulist`` (1000 millicores per CPU), ``nodeN/meminfo``
    (MemTotal) and ``nodeN/distance`` (the row over the online nodes, in id order). The whole
    machine counts as free; each node's MemFree is kept in ``details`` for display."""
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"{base}: not found; this machine exposes no NUMA layout there (not Linux, "
                         "or /sys is not mounted); give a topology file instead")
    ids = sorted(int(m.group(1)) for p in base.iterdir()
                 if (m := _SYSFS_NODE.match(p.name)) and p.is_dir())
    if not ids:
        raise ValueError(f"{base}: no node<N> folders; the kernel reports no NUMA nodes")
    online = ids
    if (base / "online").is_file():
        online = parse_cpulist(read_text(base / "online"), str(base / "online"))
        if any(n >= MAX_NODES for n in online):
            raise ValueError(f"{base / 'online'}: node ids {online[-1]} and above are not "
                             f"supported (at most {MAX_NODES} NUMA nodes)")
        if not set(online) <= set(ids):
            raise ValueError(f"{base / 'online'}: lists nodes {online}, but the folders are {ids}")
    host = HostSpec(name=hostname or socket.gethostname(), source=str(base))
    for node in online:
        folder = base / f"node{node}"
        cpulist = read_text(folder / "cpulist").strip()
        cpus = parse_cpulist(cpulist, str(folder / "cpulist"))
        info = _meminfo(read_text(folder / "meminfo"), str(folder / "meminfo"))
        host.cpu[node] = 1000 * len(cpus)
        host.mem[node] = info["MemTotal"]
        host.details[node] = {"cpulist": cpulist, "mem_free": info.get("MemFree")}
        distance_file = folder / "distance"
        if distance_file.is_file():
            text = read_text(distance_file)
            values = text.split()
            if len(values) != len(online):
                raise ValueError(f"{distance_file}: {len(values)} distances for {len(online)} online "
                                 f"nodes {online}: {text.strip()!r}")
            for j, value in zip(online, values):
                if not (value.isascii() and value.isdigit()) or len(value) > 3:
                    raise ValueError(f"{distance_file}: {value!r} is not a distance")
                host.distance[(node, j)] = _distance_value(int(value), str(distance_file))
    notes = [] if all((base / f"node{n}" / "distance").is_file() for n in online) else [
        f"{base}: a node has no distance file; {LOCAL_DISTANCE} local / {REMOTE_DISTANCE} remote assumed"]
    return build([host], notes)


__all__ = ["Topology", "HostSpec", "build", "read_topology", "read_sysfs", "parse_inventory",
           "parse_inventory_csv", "hosts_from_kubernetes", "host_from_nrt", "to_nrt",
           "parse_cpulist", "safe_yaml_documents", "read_text", "topology_files", "check_slit",
           "LOCAL_DISTANCE", "REMOTE_DISTANCE", "MAX_DISTANCE", "SYSFS_NODE_ROOT"]
