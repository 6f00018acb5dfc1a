"""Binding pods through the Kubernetes API server, for an extender that is kube-scheduler's
binder (``bindVerb``).

When an extender declares ``bindVerb``, kube-scheduler leaves the binding to it: the extender
must create the pod's ``Binding`` (``POST /api/v1/namespaces/{ns}/pods/{name}/binding``), as
kube-scheduler's own DefaultBinder does. ``APIServerBinder`` does that with the standard library
(a bearer token and the cluster's CA), and is what ``numasched extender --bind-api-server``
passes as ``Extender(on_bind=...)``. Without it the extender only records bindings (``GET
/bindings``), which suits tests and dry runs, not a cluster.
"""
from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class APIServerBinder:
    """``binder(binding)`` posts a v1 ``Binding`` for ``binding`` (the dict ``Extender.bind``
    records: ``namespace``, ``name``, ``podUID``, ``node``) and raises ``RuntimeError`` unless
    the API server answers 2xx.

    ``server`` is the API server's URL; ``token_file`` is read on every call (projected
    service-account tokens rotate); ``ca_file`` verifies the server's certificate.
    """

    def __init__(self, server: str, *, token_file=None, ca_file=None, timeout: float = 10.0):
        if not server.startswith(("https://", "http://")):
            raise ValueError(f"api server: expected an http(s):// URL, got {server!r}")
        self.server = server.rstrip("/")
        self.token_file = Path(token_file) if token_file else None
        self.timeout = timeout
        self._context = None
        if self.server.startswith("https://"):
            self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    @classmethod
    def in_cluster(cls, **kwargs) -> "APIServerBinder":
        """The API server and credentials a pod is given (``KUBERNETES_SERVICE_HOST``/``_PORT``
        and its service account's token and CA)."""
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise ValueError("not in a cluster: KUBERNETES_SERVICE_HOST/_PORT are not set; "
                             "give the API server's URL instead")
        host = f"[{host}]" if ":" in host else host
        kwargs.setdefault("token_file", SERVICE_ACCOUNT / "token")
        kwargs.setdefault("ca_file", SERVICE_ACCOUNT / "ca.crt")
        return cls(f"https://{host}:{port}", **kwargs)

    def __call__(self, binding: dict) -> None:
        ns, name = binding["namespace"], binding["name"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": binding["podUID"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": binding["node"]}}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token_file is not None:
            headers["Authorization"] = "Bearer " + self.token_file.read_text().strip()
        quote = lambda part: urllib.parse.quote(part, safe="")   # noqa: E731
        url = f"{self.server}/api/v1/namespaces/{quote(ns)}/pods/{quote(name)}/binding"
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._context) as r:
                r.read()
        except urllib.error.HTTPError as err:
            try:
                message = json.loads(err.read() or b"{}").get("message", "")
            except ValueError:
                message = ""
            raise RuntimeError(f"the API server answered {err.code}: {message[:200]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(f"the API server at {self.server} is unreachable: "
                               f"{getattr(exc, 'reason', exc)}") from None


__all__ = ["APIServerBinder"]
