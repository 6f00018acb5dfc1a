"""The desired-state controller (store, reconcile loop, namespaces, quotas, host lifecycle).

It is a thin pure-Python layer over ``numasched.place``: one kernel call per reconcile.

    >>> from numasched.control import Controller
    >>> c = Controller(backend="cython")
    >>> c.ops.add_host("h1", nodes=[("32", "256Gi"), ("32", "256Gi")])
    >>> _ = c.apply({"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [
    ...     {"name": "app", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}})
    >>> c.reconcile().placed
    [('Pod', 'default', 'web')]
    >>> s = c.get("Pod", "default", "web")["status"]; (s["phase"], s["host"], s["nodes"])
    ('Running', 'h1', [0])

The folder is the architecture:

- ``manifests.py``: where user input enters: YAML / dict manifests -> validated specs;
- ``store.py``: versioned objects, the columnar workload table and the event log;
- ``atomic.py``: transactions (the lock, all-or-nothing calls) and the errors of a shared store;
- ``persist.py``: the state as keys and values of a durable store, and back;
- ``backends.py``: the durable stores by URL (``memory://``, ``sqlite:///...``, ``etcd://...``);
- ``quota.py``: quota as admission;
- ``ops.py``: the operator plane (namespaces, quotas, hosts and their lifecycle);
- ``controller.py``: the developer plane (apply / delete / get / list) and ``reconcile()``.
"""
from .atomic import Conflict, Gone, NotLeader
from .backends import StoreUnavailable
from .controller import Applied, Controller, NotFound, ObjectList, ReconcileResult
from .manifests import WorkloadSpec, load_documents, workload_spec
from .quota import QuotaExceeded

__all__ = ["Controller", "QuotaExceeded", "ReconcileResult", "NotFound", "Applied",
           "Conflict", "Gone", "NotLeader", "ObjectList", "StoreUnavailable",
           "WorkloadSpec", "load_documents", "workload_spec"]
