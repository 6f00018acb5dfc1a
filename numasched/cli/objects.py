"""``numasched apply / get / describe / delete / events``: a desired-state store, like kubectl.

Every command opens the store named by ``--store`` (or ``$NUMASCHED_STORE``; default: the SQLite
file ``numasched.db`` in the current directory), does one thing, and exits: the store holds
the state between commands, and ``numasched controller`` reconciles it.
"""
from __future__ import annotations

import os
import sys

import click

from .common import OUTPUTS, UserError, emit, user_errors

DEFAULT_STORE_FILE = "numasched.db"
KINDS = {  # what `get` accepts, kubectl-style (plural and short names too)
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "virtualmachine": "VirtualMachine", "virtualmachines": "VirtualMachine", "vm": "VirtualMachine",
    "vms": "VirtualMachine",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
    "resourcequota": "ResourceQuota", "resourcequotas": "ResourceQuota", "quota": "ResourceQuota",
    "host": "Host", "hosts": "Host", "node": "Host", "nodes": "Host",
}
CLUSTER_SCOPED = ("Namespace", "Host")


def default_store() -> str:
    return f"sqlite:///{os.path.abspath(DEFAULT_STORE_FILE)}"


def store_option(f):
    return click.option(
        "--store", "store", envvar="NUMASCHED_STORE", default=None, metavar="URL",
        help=f"Where the state lives: sqlite:///path/file.db, etcd://host:port or memory:// "
             f"[env NUMASCHED_STORE; default: sqlite file ./{DEFAULT_STORE_FILE}].")(f)


def namespace_option(f):
    return click.option("--namespace", "-n", default=None, metavar="NS",
                        help="Namespace [default: default].")(f)


def output_option(f):
    return click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table",
                        show_default=True, help="table, json or yaml.")(f)


def open_controller(store: str | None, **kwargs):
    from ..control import Controller

    return Controller(store=store or default_store(), **kwargs)


def resolve_kind(kind: str) -> str:
    resolved = KINDS.get(kind.lower())
    if resolved is None:
        raise UserError(f"unknown kind {kind!r}; known: " + ", ".join(sorted(set(KINDS.values()))))
    return resolved


@click.command("apply")
@click.option("--filename", "-f", "files", multiple=True, required=True, metavar="FILE",
              help="Manifest YAML (- for stdin); repeat for several. Pods, Deployments, "
                   "VirtualMachines, Namespaces, ResourceQuotas, and hosts: "
                   "NodeResourceTopology / Node objects and inventories.")
@store_option
@output_option
def apply_command(files, store, output) -> None:
    """Create or update the objects of manifest files, all of them or none."""
    from ..io.topology import read_text

    with user_errors():
        docs = []
        for name in files:
            text = sys.stdin.read() if name == "-" else read_text(name)
            docs.append(text)
        with open_controller(store) as c:
            from ..control.manifests import load_documents

            applied = c.apply([d for text in docs for d in load_documents(text)])
    rows = [{"kind": a.kind, "namespace": a.namespace, "name": a.name, "action": a.action}
            for a in applied]
    if output != "table":
        return emit(rows, output)
    for a in applied:
        click.echo(f"{a.kind.lower()}/{a.name} {a.action}")


def _age_free(obj) -> str:
    free = obj["status"]["free"]
    return ",".join(f"{f['cpu'] // 1000}/{f['memory'] >> 30}Gi" for f in free)


def _table(kind: str, objects: list[dict], all_namespaces: bool) -> list[list[str]]:
    from ..io.quantity import format_cpu, format_memory

    head = (["NAMESPACE"] if all_namespaces and kind not in CLUSTER_SCOPED else []) + ["NAME"]
    if kind in ("Pod", "VirtualMachine"):
        head += ["STATUS", "HOST", "NUMA", "CPU", "MEMORY", "REASON"]
    elif kind == "Deployment":
        head += ["READY", "PENDING", "MESSAGE"]
    elif kind == "Namespace":
        head += ["NUMA", "CPU-USED", "MEMORY-USED", "WORKLOADS"]
    elif kind == "ResourceQuota":
        head += ["HARD", "USED"]
    else:
        head += ["STATE", "NODES", "FREE(cores/mem per node)", "WORKLOADS"]
    rows = [head]
    for o in objects:
        meta, status = o["metadata"], o["status"]
        row = ([meta.get("namespace", "")] if len(head) and head[0] == "NAMESPACE" else []) + [meta["name"]]
        if kind in ("Pod", "VirtualMachine"):
            row += [status["phase"], status["host"] or "<none>",
                    ",".join(map(str, status["nodes"])) or "-",
                    format_cpu(status["requests"]["cpu"]), format_memory(status["requests"]["memory"]),
                    status["reason"] or ""]
        elif kind == "Deployment":
            row += [f"{status['runningReplicas']}/{status['desiredReplicas']}",
                    str(status["pendingReplicas"]), status["message"]]
        elif kind == "Namespace":
            used = status["used"]
            row += [status["numa"], format_cpu(used["requests.cpu"]),
                    format_memory(used["requests.memory"]), str(used["count"])]
        elif kind == "ResourceQuota":
            row += [",".join(f"{k}={v}" for k, v in status["hard"].items()),
                    ",".join(f"{k}={v}" for k, v in status["used"].items())]
        else:
            row += [status["state"], str(len(o["spec"]["nodes"])), _age_free(o),
                    str(status["workloads"])]
        rows.append(row)
    return rows


def echo_table(rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


@click.command("get")
@click.argument("kind")
@click.argument("name", required=False)
@namespace_option
@click.option("--all-namespaces", "-A", is_flag=True, help="Every namespace.")
@store_option
@output_option
def get_command(kind, name, namespace, all_namespaces, store, output) -> None:
    """Show objects of KIND (pods, deployments, vms, namespaces, quotas, hosts), or the one
    named NAME."""
    kind = resolve_kind(kind)
    with user_errors(), open_controller(store) as c:
        if name is not None:
            objects = [c.get(kind, namespace, name)]
        else:
            ns = None if all_namespaces or kind in CLUSTER_SCOPED else (namespace or "default")
            objects = c.list(kind, ns)
    if output != "table":
        return emit(objects[0] if name is not None else
                    {"apiVersion": "v1", "kind": "List",
                     "metadata": {"resourceVersion": objects.resource_version},
                     "items": list(objects)}, output)
    if not objects:
        click.echo(f"No {kind} objects found.")
        return
    echo_table(_table(kind, objects, all_namespaces))


def object_command(name: str):
    """A command on one object: ``numasched NAME KIND OBJECT [-n NS] [--store] [-o]``."""
    def wrap(f):
        for decorate in (output_option, store_option, namespace_option, click.argument("name"),
                         click.argument("kind"), click.command(name)):
            f = decorate(f)
        return f
    return wrap


@object_command("describe")
def describe_command(kind, name, namespace, store, output) -> None:
    """Show one object in full, with its recent events."""
    kind = resolve_kind(kind)
    with user_errors(), open_controller(store) as c:
        obj = c.get(kind, namespace, name)
        ns = obj["metadata"].get("namespace")
        owner = name
        if kind == "Pod" and "ownerReferences" in obj["metadata"]:
            owner = obj["metadata"]["ownerReferences"][0]["name"]
        events = [e._asdict() for e in c.events(namespace=ns, name=owner)][-20:]
    obj = dict(obj, events=events)
    if output != "table":
        return emit(obj, output)
    emit({k: v for k, v in obj.items() if k != "events"}, "yaml")
    click.echo("events:")
    for e in events:
        click.echo(f"  {e['type']:<8} {e['reason']:<18} {e['message']}")


@object_command("delete")
@click.option("--ignore-not-found", is_flag=True, help="An object that does not exist is not an "
              "error (nothing to delete).")
def delete_command(kind, name, namespace, store, output, ignore_not_found) -> None:
    """Delete an object (a reconcile frees its capacity)."""
    from ..control import NotFound

    kind = resolve_kind(kind)
    action = "deleted"
    with user_errors(), open_controller(store) as c:
        try:
            c.delete(kind, namespace, name)
        except NotFound:
            if not ignore_not_found:
                raise
            action = "not found"
    if output != "table":
        return emit({"kind": kind, "namespace": namespace, "name": name, "action": action},
                    output)
    click.echo(f"{kind.lower()}/{name} {action}")


@click.command("events")
@namespace_option
@click.option("--for", "subject", default=None, metavar="KIND/NAME",
              help="Only the events of one object, e.g. deployment/web.")
@click.option("--limit", default=50, show_default=True, help="The newest N events (0: all).")
@store_option
@output_option
def events_command(namespace, subject, limit, store, output) -> None:
    """The event log, oldest first (like kubectl get events)."""
    kind = name = None
    if subject:
        if "/" not in subject:
            raise UserError(f"--for: expected KIND/NAME, got {subject!r}")
        kind, name = subject.split("/", 1)
        kind = resolve_kind(kind)
    with user_errors(), open_controller(store) as c:
        events = [e._asdict() for e in c.events(namespace=namespace, kind=kind, name=name)]
    if limit:
        events = events[-limit:]
    if output != "table":
        return emit(events, output)
    rows = [["ROUND", "TYPE", "REASON", "OBJECT", "MESSAGE"]]
    for e in events:
        obj = f"{e['kind'].lower()}/{e['name']}"
        rows.append([str(e["round"]), e["type"], e["reason"], obj, e["message"]])
    echo_table(rows)


commands = [apply_command, get_command, describe_command, delete_command, events_command]
